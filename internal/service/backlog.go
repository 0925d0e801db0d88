package service

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/stream"
)

// BacklogMetrics are the gauges every consuming service (filter, warmer) exports for its
// durable consumer, from the consumer info stream.Consume reads every few seconds
// (stream.ConsumerConfig.ObserveBacklog): drain_consumer_pending_messages{consumer} and
// drain_consumer_ack_pending_messages{consumer}. Every replica reports the same server-side
// numbers, so dashboards take max by consumer.
type BacklogMetrics struct {
	pending, ackPending *prometheus.GaugeVec
}

// NewBacklogMetrics registers the backlog gauges on reg.
func NewBacklogMetrics(reg prometheus.Registerer) (*BacklogMetrics, error) {
	m := &BacklogMetrics{
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drain_consumer_pending_messages",
			Help: "Messages of the stream not yet delivered to the durable consumer (JetStream NumPending), as of the last consumer info read.",
		}, []string{"consumer"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drain_consumer_ack_pending_messages",
			Help: "Messages delivered to the durable consumer's replicas and not yet acknowledged (JetStream NumAckPending).",
		}, []string{"consumer"}),
	}
	for _, c := range []prometheus.Collector{m.pending, m.ackPending} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register consumer backlog metrics: %w", err)
		}
	}
	return m, nil
}

// Observe sets the gauges of b.Consumer; it is a stream.ConsumerConfig.ObserveBacklog.
func (m *BacklogMetrics) Observe(b stream.Backlog) {
	m.pending.WithLabelValues(b.Consumer).Set(float64(b.Pending))
	m.ackPending.WithLabelValues(b.Consumer).Set(float64(b.AckPending))
}
