package status_test

import (
	"strings"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/cmd/drainctl/internal/status"
	"github.com/routemaster-drain/drain/pkg/stream"
)

func sample(at time.Time, lastSeq, delivered uint64) *status.Status {
	return &status.Status{Time: at,
		Streams:   []status.Stream{{Name: "p_events", LastSeq: lastSeq}},
		Consumers: []status.Consumer{{Name: "p_filter", Stream: "p_events", Delivered: delivered}}}
}

func rates(st *status.Status) (stream, consumer *float64) {
	return st.Streams[0].Rate, st.Consumers[0].Rate
}

func TestRates(t *testing.T) {
	var r status.Rates
	t0 := time.Unix(1000, 0)
	st := sample(t0, 10, 4)
	r.Apply(st)
	if s, c := rates(st); s != nil || c != nil {
		t.Fatal("the first sample has rates")
	}
	st = sample(t0.Add(2*time.Second), 30, 10)
	r.Apply(st)
	if s, c := rates(st); s == nil || *s != 10 || c == nil || *c != 3 {
		t.Fatalf("rates after 2 s: %v %v", s, c)
	}
	// A viewer 100 ms later gets the same rates; the sample is not replaced.
	st = sample(t0.Add(2100*time.Millisecond), 1000, 1000)
	r.Apply(st)
	if s, c := rates(st); *s != 10 || *c != 3 {
		t.Fatalf("rates 100 ms after a sample: %v %v", *s, *c)
	}
	// A counter that went back (the consumer was recreated) has no rate for one sample.
	st = sample(t0.Add(4*time.Second), 50, 2)
	r.Apply(st)
	if s, c := rates(st); s == nil || *s != 10 || c != nil {
		t.Fatalf("rates after a reset: %v %v", s, c)
	}
}

func TestStageOf(t *testing.T) {
	n := stream.Names{Prefix: "rm"}
	for durable, want := range map[string]string{"rm_filter": "filter", "rm_warm_routemaster": "warm", "rm_warm_eu": "warm",
		"rm_audit": "rm_audit", "other_filter": "other_filter"} {
		if got := status.StageOf(n, durable); got != want {
			t.Errorf("StageOf(%s) = %s, want %s", durable, got, want)
		}
	}
}

func TestParseBreakers(t *testing.T) {
	text := `# HELP drain_apiclient_breaker_state Circuit breaker state per origin host: 0 closed, 1 half-open, 2 open.
# TYPE drain_apiclient_breaker_state gauge
drain_apiclient_breaker_state{host="b.example.com"} 1
drain_apiclient_breaker_state{host="a.example.com"} 2
drain_apiclient_breaker_state{host="c.example.com"} 0
# TYPE drain_build_info gauge
drain_build_info{version="dev"} 1
`
	got, err := status.ParseBreakers([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []status.HostBreaker{{Host: "a.example.com", State: "open", Value: 2}, {Host: "b.example.com", State: "half-open", Value: 1},
		{Host: "c.example.com", State: "closed", Value: 0}}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("ParseBreakers = %+v", got)
	}
	if got, err := status.ParseBreakers([]byte("drain_build_info 1\n")); err != nil || len(got) != 0 {
		t.Fatalf("no breaker: %v %v", got, err)
	}
	if _, err := status.ParseBreakers([]byte("not {metrics")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("garbage: %v", err)
	}
}

// FuzzParseBreakers: any /metrics answer parses or fails cleanly, and every host found has a
// state name.
func FuzzParseBreakers(f *testing.F) {
	f.Add([]byte("drain_apiclient_breaker_state{host=\"a\"} 2\n"))
	f.Add([]byte("# TYPE drain_apiclient_breaker_state gauge\ndrain_apiclient_breaker_state{host=\"a\\\"b\"} 1e9\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		hosts, err := status.ParseBreakers(text)
		if err != nil {
			return
		}
		for _, h := range hosts {
			if h.State == "" || h.State != status.StateName(h.Value) {
				t.Fatalf("host %+v", h)
			}
		}
	})
}
