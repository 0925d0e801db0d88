package draintest

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricAndBuffer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"outcome", "host"})
	reg.MustRegister(c)
	c.WithLabelValues("ack", "a").Add(2)
	c.WithLabelValues("ack", "b").Add(3)
	c.WithLabelValues("retry", "a").Inc()
	for _, tc := range []struct {
		labels []string
		want   float64
		ok     bool
	}{
		{nil, 6, true},
		{[]string{"outcome", "ack"}, 5, true},
		{[]string{"outcome", "ack", "host", "b"}, 3, true},
		{[]string{"outcome", "dead_letter"}, 0, false},
	} {
		if got, ok := Metric(t, reg, "x_total", tc.labels...); got != tc.want || ok != tc.ok {
			t.Errorf("Metric(%v) = %v, %v; want %v, %v", tc.labels, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := Metric(t, reg, "missing_total"); ok {
		t.Error("a missing family matched")
	}
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = b.Write([]byte("ab")) }()
	}
	wg.Wait()
	if len(b.String()) != 16 {
		t.Errorf("buffer = %q", b.String())
	}
}
