package receiver

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/labels"
)

// OtherTopic is the topic label value shared by the topics beyond DRAIN_METRICS_MAX_TOPICS:
// topics come from events, so they never grow the series without bound.
const OtherTopic = "other"

// metrics are the ingest's Prometheus series, registered on the registry given to New.
type metrics struct {
	requests     *prometheus.CounterVec
	events       *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	publish      prometheus.Histogram
	publishFail  *prometheus.CounterVec
	inflight     prometheus.Gauge
	batchEvents  prometheus.Histogram
	topics       *labels.Bounded // the topic label: the siphoned topics and the first max seen, the rest OtherTopic
	splits       prometheus.Counter
	byCode       [600]atomic.Pointer[counter] // requests' counter of each status, once used
}

func newMetrics(reg prometheus.Registerer, maxTopics int, siphoned []string) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drain_ingest_requests_total",
			Help: "HTTP requests to the ingest path, by response status code.",
		}, []string{"code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drain_ingest_events_total",
			Help: "Events accepted (stored in JetStream and answered 204), by topic and type.",
		}, []string{"topic", "type"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drain_ingest_auth_failures_total",
			Help: "Rejected authentications: missing (401, no Authorization header) or failed (403).",
		}, []string{"reason"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "drain_ingest_publish_duration_seconds",
			Help:    "Time from the first publish of a batch to its last JetStream acknowledgement.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		publishFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drain_ingest_publish_failures_total",
			Help: "Batches answered 503: overload (in-flight cap reached), timeout (JetStream too slow) or error (NATS down, no stream).",
		}, []string{"reason"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drain_ingest_inflight_batches",
			Help: "Batches being read or published right now (capped by DRAIN_INGEST_MAX_INFLIGHT).",
		}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "drain_ingest_batch_events",
			Help:    "Events per accepted batch (compare with the subscription's max).",
			Buckets: []float64{0, 1, 5, 10, 25, 50, 100, 250, 1000, 10000},
		}),
		splits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "drain_ingest_split_messages_total",
			Help: "Messages stored for topics whose events did not fit one NATS message (max_payload): each such topic of a batch is stored as several messages.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.events, m.authFailures, m.publish, m.publishFail, m.inflight, m.batchEvents, m.splits} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{"missing", "failed"} {
		m.authFailures.WithLabelValues(r)
	}
	for _, r := range []string{"overload", "timeout", "error"} {
		m.publishFail.WithLabelValues(r)
	}
	m.topics = labels.NewBounded(maxTopics, OtherTopic, siphoned...) // configured: not counted against the bound
	return m, nil
}

// request counts one request answered code; the counter of each status is looked up once.
func (m *metrics) request(code int) {
	if code < 0 || code >= len(m.byCode) {
		m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
		return
	}
	c := m.byCode[code].Load()
	if c == nil {
		c = &counter{m.requests.WithLabelValues(strconv.Itoa(code))}
		m.byCode[code].Store(c)
	}
	c.Inc()
}
