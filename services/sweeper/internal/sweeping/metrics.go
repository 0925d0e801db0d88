package sweeping

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sweeps      prometheus.Counter
	batches     prometheus.Counter
	handed      prometheus.Counter
	failures    *prometheus.CounterVec
	recovered   prometheus.Counter
	duplicates  prometheus.Counter
	lostLeases  prometheus.Counter
	refusals    prometheus.Counter
	deadLetters prometheus.Counter
	size        prometheus.Gauge
	duration    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_sweeper_sweeps_total",
			Help: "Sweeps run (timer, lease expiry or POST /sweep)."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_sweeper_batches_total",
			Help: "Batches handed on and completed."}),
		handed: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_sweeper_urls_handed_on_total",
			Help: "URLs handed on (every configured hand-off succeeded)."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drain_sweeper_handoff_failures_total",
			Help: "Failed hand-off attempts, by target (jetstream, webhook); each is retried."}, []string{"target"}),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_sweeper_recovered_batches_total",
			Help: "Batches taken over after their holder's lease expired (a sweeper died or stalled)."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_sweeper_duplicate_publishes_total",
			Help: "Publishes JetStream dropped as duplicates (a recovered batch its dead holder had already published)."}),
		lostLeases: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_sweeper_lost_leases_total",
			Help: "Batches whose lease expired while this sweeper was still handing them on."}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_sweeper_webhook_refusals_total",
			Help: "Refusals of one URL by the webhook (a 4xx for it alone); each refused URL is offered again after a backoff or dead-lettered."}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_sweeper_dead_letters_total",
			Help: "URLs dead-lettered on <prefix>.dlq.sweep after DRAIN_MAX_DELIVER webhook refusals; they left the dirty map."}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{Name: "drain_sweeper_dirty_urls",
			Help: "Dirty URLs in the map (leased ones included), as of the end of the last sweep."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "drain_sweeper_sweep_duration_seconds",
			Help: "Time one sweep took.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
	}
	for _, c := range []prometheus.Collector{m.sweeps, m.batches, m.handed, m.failures, m.recovered, m.duplicates, m.lostLeases, m.refusals, m.deadLetters, m.size, m.duration} {
		if err := reg.Register(c); err != nil {
			return m, err
		}
	}
	m.failures.WithLabelValues("jetstream")
	m.failures.WithLabelValues("webhook")
	return m, nil
}
