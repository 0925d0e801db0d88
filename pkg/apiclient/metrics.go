package apiclient

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rejected *prometheus.CounterVec
	state    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drain_apiclient_requests_total",
			Help: "Requests sent to origins, one per attempt, by host, method and outcome class (2xx..5xx, timeout, error, too_large, canceled).",
		}, []string{"host", "method", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drain_apiclient_request_duration_seconds",
			Help:    "Time of one request attempt to an origin, body included, by host and outcome class.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"host", "class"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drain_apiclient_rejected_total",
			Help: "Requests refused without being sent, by host and reason (circuit_open, host_not_allowed).",
		}, []string{"host", "reason"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drain_apiclient_breaker_state",
			Help: "Circuit breaker state per origin host: 0 closed, 1 half-open, 2 open.",
		}, []string{"host"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err == nil {
		m.duration, err = register(reg, m.duration)
	}
	if err == nil {
		m.rejected, err = register(reg, m.rejected)
	}
	if err == nil {
		m.state, err = register(reg, m.state)
	}
	return m, err
}

// register registers c, or returns the collector already registered under the same name
// (a second Client on one registry shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("apiclient: register metrics: %w", err)
	}
	return c, nil
}

func (m *metrics) observe(host, method, class string, d time.Duration) {
	m.requests.WithLabelValues(host, method, class).Inc()
	m.duration.WithLabelValues(host, class).Observe(d.Seconds())
}

func (m *metrics) reject(host, reason string) { m.rejected.WithLabelValues(host, reason).Inc() }

func (m *metrics) breakerState(host string, s gobreaker.State) {
	v := StateClosed
	switch s {
	case gobreaker.StateHalfOpen:
		v = StateHalfOpen
	case gobreaker.StateOpen:
		v = StateOpen
	}
	m.state.WithLabelValues(host).Set(float64(v))
}
