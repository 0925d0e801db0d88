package filtering

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/internal/service"
)

type metrics struct {
	in, fresh, stale, dirty, bumps, warms prometheus.Counter
	redeliveries, deadLetters, splits     prometheus.Counter
	messages                              *prometheus.CounterVec
	latency                               prometheus.Histogram
	backlog                               *service.BacklogMetrics
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_filter_" + name, Help: help})
	}
	m := &metrics{
		in:           counter("events_in_total", "Events in the batches the filter processed."),
		fresh:        counter("events_fresh_total", "Events found fresh and published to <prefix>.changed.<topic>."),
		stale:        counter("events_stale_total", "Events dropped: not newer than the stored state, or superseded in their batch."),
		dirty:        counter("newly_dirty_total", "URLs added to the dirty map that were not in it."),
		bumps:        counter("cache_bumps_total", "Cache invalidation index bumps (cache modes bust and warm)."),
		warms:        counter("warm_requests_total", "Warm requests published to <prefix>.warm (cache mode warm)."),
		redeliveries: counter("redeliveries_total", "Messages handled on their second or later delivery."),
		deadLetters:  counter("dead_letters_total", "Messages dead-lettered to <prefix>.dlq.filter."),
		splits:       counter("split_messages_total", "Changed messages published for topics whose fresh events did not fit one NATS message (max_payload), each such topic of a batch as several messages."),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drain_filter_messages_total", Help: "Handler runs by outcome: ack, retry, dead_letter, transient (the message is held until the outage ends).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "drain_filter_processing_duration_seconds",
			Help:    "Time from a message's delivery to its outcome (reorder, cache, publishes).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
	}
	for _, c := range []prometheus.Collector{m.in, m.fresh, m.stale, m.dirty, m.bumps, m.warms, m.redeliveries, m.deadLetters, m.splits, m.messages, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	backlog, err := service.NewBacklogMetrics(reg)
	if err != nil {
		return nil, err
	}
	m.backlog = backlog
	return m, nil
}

func (m *metrics) observe(outcome string, deliveries uint64, took time.Duration) {
	m.messages.WithLabelValues(outcome).Inc()
	m.latency.Observe(took.Seconds())
	if deliveries > 1 {
		m.redeliveries.Inc()
	}
	if outcome == "dead_letter" {
		m.deadLetters.Inc()
	}
}
