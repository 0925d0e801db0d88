package apiclient

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/routemaster-drain/drain/pkg/labels"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rejected *prometheus.CounterVec
	state    *prometheus.GaugeVec
	breakers prometheus.Gauge
	hosts    *labels.Bounded
}

func newMetrics(reg prometheus.Registerer, hosts *labels.Bounded) (*metrics, error) {
	m := &metrics{
		hosts: hosts,
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
			Help: "Requests refused without being sent, by host and reason (circuit_open, host_not_allowed, address_not_allowed); a refused host is labelled other unless requests were sent to it.",
		}, []string{"host", "reason"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drain_apiclient_breaker_state",
			Help: "Circuit breaker state per origin host: 0 closed, 1 half-open, 2 open; host other is the worst state of the breakers of hosts without a label of their own.",
		}, []string{"host"}),
		breakers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drain_apiclient_breakers",
			Help: "Circuit breakers held in memory (one per recently used host, bounded by DRAIN_BREAKER_MAX_HOSTS, plus the shared other breaker).",
		}),
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
	if err == nil {
		m.breakers, err = register(reg, m.breakers)
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

// observe counts one request sent to host: host gets a label of its own if there is room.
func (m *metrics) observe(host, method, class string, d time.Duration) {
	label := m.hosts.Admit(host)
	m.requests.WithLabelValues(label, method, class).Inc()
	m.duration.WithLabelValues(label, class).Observe(d.Seconds())
}

// reject counts a request refused before it was sent. It never gives host a label of its
// own: a host that only ever gets refused stays under OtherHost.
func (m *metrics) reject(host, reason string) {
	m.rejected.WithLabelValues(m.hosts.Existing(host), reason).Inc()
}

// breakerState sets the state gauge of a label (a host's own, or OtherHost).
func (m *metrics) breakerState(label string, s gobreaker.State) {
	m.state.WithLabelValues(label).Set(float64(stateValue(s)))
}

func stateValue(s gobreaker.State) int {
	switch s {
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	case gobreaker.StateOpen:
		return StateOpen
	}
	return StateClosed
}

// newHostLabels bounds the values of the host label. The host names of the configuration
// (exact AllowHosts entries, breaker overrides) always have their own; of the others, the
// first max that a request is sent to get one, and every later one shares OtherHost.
func newHostLabels(max int, configured []string) *labels.Bounded {
	preset := make([]string, len(configured))
	for i, h := range configured {
		preset[i] = strings.ToLower(h)
	}
	return labels.NewBounded(max, OtherHost, preset...)
}
