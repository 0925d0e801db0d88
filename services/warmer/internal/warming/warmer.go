// Package warming is the warmer service: it consumes warm requests from <prefix>.warm with one
// durable consumer shared by every replica, coalesces bursts per URL, fetches the origin
// through the API client and stores the answer in the cache, or busts the cache for deletes,
// 404 and 410 (docs/warmer.md).
package warming

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// HoldFactor is how many messages a process holds per fetch slot (DRAIN_CONCURRENCY): a
// coalesced message waits for the fetch that covers it without taking a fetch slot.
const HoldFactor = 16

// maxSuperseded is how many fetches in a row may be overtaken by invalidations before the
// waiting messages are handed back to JetStream for a later retry.
const maxSuperseded = 3

// Options configure a Warmer.
type Options struct {
	JS    jetstream.JetStream
	Names stream.Names
	// Cache must have a Fetcher (cache.APIFetcher for the real client).
	Cache *cache.Cache
	// QueueName names the durable consumer <prefix>_warm_<QueueName> (ROUTEMASTER_QUEUE_NAME).
	QueueName string
	// Consumer holds DRAIN_CONCURRENCY (fetches at once), MaxAckPending, MaxDeliver, AckWait
	// and the retry backoff.
	Consumer config.Consumer
	// HostConcurrency bounds fetches at once per origin host (DRAIN_WARM_HOST_CONCURRENCY).
	HostConcurrency int
	// Coalesce is the least time between two fetches of one URL (DRAIN_WARM_COALESCE).
	Coalesce time.Duration
	// Manage says whether the consumer may be created or updated (DRAIN_STREAM_MANAGE).
	Manage     stream.Manage
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Warmer runs the warm consumer. Build it with New and start it with Run.
type Warmer struct {
	o       Options
	fetch   chan struct{}
	metrics *metrics

	mu    sync.Mutex
	urls  map[string]*urlQueue
	hosts map[string]*hostSlots // only hosts with a fetch running or waiting
	wg    sync.WaitGroup
}

// New checks o and returns a Warmer.
func New(o Options) (*Warmer, error) {
	if o.JS == nil || o.Cache == nil {
		return nil, errors.New("warmer: JS and Cache are required")
	}
	if o.QueueName == "" {
		o.QueueName = "routemaster"
	}
	if o.Consumer.Concurrency <= 0 {
		o.Consumer.Concurrency = 8
	}
	if o.HostConcurrency <= 0 {
		o.HostConcurrency = 16
	}
	if o.Coalesce < 0 {
		o.Coalesce = 0
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Warmer{
		o:       o,
		fetch:   make(chan struct{}, o.Consumer.Concurrency),
		metrics: m,
		urls:    map[string]*urlQueue{},
		hosts:   map[string]*hostSlots{},
	}, nil
}

// Durable is the name of the warmers' shared durable consumer.
func (w *Warmer) Durable() string { return w.o.Names.Durable("warm_" + w.o.QueueName) }

// ConsumerConfig is the JetStream consumer the warmer runs.
func (w *Warmer) ConsumerConfig() stream.ConsumerConfig {
	c := w.o.Consumer
	hold := c.Concurrency * HoldFactor
	if c.MaxAckPending > 0 {
		hold = min(hold, c.MaxAckPending)
	}
	return stream.ConsumerConfig{
		Stream:        w.o.Names.Stream(stream.Warm),
		Durable:       w.Durable(),
		FilterSubject: w.o.Names.Subject(stream.Warm, ""),
		Stage:         "warm",
		Concurrency:   max(hold, 1),
		MaxAckPending: c.MaxAckPending,
		MaxDeliver:    c.MaxDeliver,
		AckWait:       c.AckWait,
		Backoff:       c.RetryBackoff,
		BackoffMax:    c.RetryBackoffMax,
		Manage:        w.o.Manage,
		Log:           w.o.Log,
		Observe: func(outcome string, _ uint64, _ time.Duration) {
			w.metrics.messages.WithLabelValues(outcome).Inc()
		},
	}
}

// Run consumes warm requests until ctx is cancelled, then finishes the messages it holds and
// returns nil.
func (w *Warmer) Run(ctx context.Context) error {
	err := stream.Consume(ctx, w.o.JS, w.o.Names.Subject(stream.DLQ, ""), w.ConsumerConfig(), w.handle)
	w.wg.Wait()
	return err
}

// handle decides one warm request's fate; see the package documentation.
func (w *Warmer) handle(ctx context.Context, msg stream.Msg) error {
	req, err := cache.ParseWarmRequest(msg.Data())
	if err != nil {
		w.o.Log.Error("bad warm request", "err", err)
		return stream.Permanent(err)
	}
	if req.Type == cache.WarmDelete {
		busted, cur, err := w.o.Cache.BustIf(ctx, req.URL, req.Index)
		if err != nil {
			return stream.RedisFailure(err)
		}
		w.metrics.requests.WithLabelValues("delete").Inc()
		w.o.Log.Debug("delete", "url", req.URL, "index", req.Index, "busted", busted, "current", cur)
		return nil
	}
	st, err := w.o.Cache.State(ctx, req.URL, cache.Variant{})
	if err != nil {
		return stream.RedisFailure(err)
	}
	if st.HasStored && st.Stored >= req.Index {
		w.metrics.requests.WithLabelValues("covered").Inc()
		return nil
	}
	err = w.await(req.URL, req.Index)
	if err == nil {
		w.metrics.requests.WithLabelValues("fetched").Inc()
	}
	return err
}

// urlQueue holds the messages of one URL waiting for a fetch that covers them.
type urlQueue struct {
	pending []*waiter
	wake    chan struct{}
}

type waiter struct {
	index int64
	done  chan error
}

// await parks a request until a fetch of url covers it, and returns the message's result.
func (w *Warmer) await(u string, index int64) error {
	wt := &waiter{index: index, done: make(chan error, 1)}
	w.mu.Lock()
	q := w.urls[u]
	if q == nil {
		q = &urlQueue{wake: make(chan struct{}, 1)}
		w.urls[u] = q
		w.wg.Add(1)
		go w.run(u, q)
	}
	q.pending = append(q.pending, wt)
	w.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return <-wt.done
}

// run is the per-URL throttle: a leading fetch at once, then at most one fetch per Coalesce
// while requests keep coming, and a trailing fetch for those that arrived during the last one.
// It exits once the URL has been idle for Coalesce.
func (w *Warmer) run(u string, q *urlQueue) {
	defer w.wg.Done()
	var last time.Time
	superseded := 0
	for {
		w.mu.Lock()
		n := len(q.pending)
		if n == 0 && time.Since(last) >= w.o.Coalesce {
			delete(w.urls, u)
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if n == 0 {
			t := time.NewTimer(w.o.Coalesce - time.Since(last))
			select {
			case <-q.wake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		if wait := w.o.Coalesce - time.Since(last); wait > 0 {
			time.Sleep(wait) // requests arriving meanwhile join this fetch
		}
		w.mu.Lock()
		atStart := len(q.pending)
		w.mu.Unlock()

		last = time.Now()
		out := w.warm(u)

		w.mu.Lock()
		var resolved []*waiter
		keep := q.pending[:0:0]
		switch out.kind {
		case outStored, outGone:
			// Covered: every request that was waiting when the fetch started (its event came
			// before the fetch), and any later one whose index the fetch already saw.
			superseded = 0
			for i, wt := range q.pending {
				if i < atStart || wt.index <= out.index {
					resolved = append(resolved, wt)
				} else {
					keep = append(keep, wt)
				}
			}
		case outSuperseded:
			superseded++
			if superseded < maxSuperseded {
				keep = q.pending
				break
			}
			superseded = 0
			resolved = q.pending
			out.err = stream.Retry(errors.New("warm: invalidated again during each of the last fetches"))
		default:
			resolved = q.pending
		}
		q.pending = keep
		w.mu.Unlock()
		if out.err == nil && len(resolved) > 1 {
			w.metrics.coalesced.Add(float64(len(resolved) - 1))
		}
		for _, wt := range resolved {
			wt.done <- out.err
		}
	}
}

type outcomeKind int

const (
	outStored outcomeKind = iota
	outGone
	outSuperseded
	outFailed
)

type outcome struct {
	kind  outcomeKind
	index int64
	err   error // the message result when kind is outFailed (or after too many supersessions)
}

// warm fetches u once within the concurrency limits and stores or busts.
func (w *Warmer) warm(u string) outcome {
	host := hostOf(u)
	hs := w.holdHost(host)
	defer w.releaseHost(host, hs)
	// The host's slot first: a request queued behind a slow host waits there without holding
	// one of the process's slots, so other hosts keep every slot the slow one does not use.
	hs.sem <- struct{}{}
	w.fetch <- struct{}{}
	w.metrics.inflight.Inc()
	defer func() {
		w.metrics.inflight.Dec()
		<-w.fetch
		<-hs.sem
	}()
	// A fetch is bounded by the API client's timeout and retries; this only guards against a
	// fetcher without one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	start := time.Now()
	res, err := w.o.Cache.Refresh(ctx, u, cache.Variant{})
	w.metrics.latency.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, cache.ErrRedis):
		// Reading the index or storing failed: the cache Redis, not the origin.
		w.metrics.fetches.WithLabelValues("retry").Inc()
		return outcome{kind: outFailed, err: stream.RedisFailure(err)}
	case err == nil && res.Stored:
		w.metrics.fetches.WithLabelValues("stored").Inc()
		return outcome{kind: outStored, index: res.Index}
	case err == nil:
		w.metrics.fetches.WithLabelValues("superseded").Inc()
		return outcome{kind: outSuperseded}
	case errors.Is(err, apiclient.ErrNotFound) || errors.Is(err, apiclient.ErrGone):
		busted, _, berr := w.o.Cache.BustIf(ctx, u, res.Index)
		if berr != nil {
			w.metrics.fetches.WithLabelValues("retry").Inc()
			return outcome{kind: outFailed, err: stream.RedisFailure(berr)}
		}
		w.metrics.fetches.WithLabelValues("gone").Inc()
		if !busted {
			return outcome{kind: outSuperseded}
		}
		return outcome{kind: outGone, index: res.Index}
	case permanent(err):
		w.metrics.fetches.WithLabelValues("permanent").Inc()
		w.o.Log.Error("warm failed for good; the requests go to the dead letters", "url", redact(u), "err", err)
		return outcome{kind: outFailed, err: stream.Permanent(err)}
	default:
		w.metrics.fetches.WithLabelValues("retry").Inc()
		return outcome{kind: outFailed, err: stream.Retry(err)}
	}
}

// permanent reports errors that a retry cannot fix: a disallowed host, an over-size body, a
// bad URL, a redirect or a client error other than 404, 408, 410 and 429.
func permanent(err error) bool {
	switch {
	case errors.Is(err, apiclient.ErrHostNotAllowed), errors.Is(err, apiclient.ErrTooLarge),
		errors.Is(err, cache.ErrTooLarge), errors.Is(err, apiclient.ErrBadURL),
		errors.Is(err, apiclient.ErrRedirect), errors.Is(err, apiclient.ErrUnexpectedStatus):
		return true
	case apiclient.Retryable(err):
		return false
	case errors.Is(err, apiclient.ErrClientError):
		var se *apiclient.StatusError
		return !(errors.As(err, &se) && se.Status == 408)
	}
	return false
}

// hostSlots bounds the fetches of one origin host; refs counts the fetches running or
// waiting for it, and the entry is dropped from Warmer.hosts when refs reaches 0, so the map
// holds only hosts with work in hand however many hosts publishers name.
type hostSlots struct {
	sem  chan struct{}
	refs int
}

// holdHost returns host's slots, counting the caller until releaseHost.
func (w *Warmer) holdHost(host string) *hostSlots {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.hosts[host]
	if h == nil {
		h = &hostSlots{sem: make(chan struct{}, w.o.HostConcurrency)}
		w.hosts[host] = h
	}
	h.refs++
	return h
}

// releaseHost ends a holdHost, dropping the host's entry once nobody holds it.
func (w *Warmer) releaseHost(host string, h *hostSlots) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h.refs--; h.refs == 0 {
		delete(w.hosts, host)
	}
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Redacted()
}

type metrics struct {
	fetches   *prometheus.CounterVec
	requests  *prometheus.CounterVec
	messages  *prometheus.CounterVec
	coalesced prometheus.Counter
	latency   prometheus.Histogram
	inflight  prometheus.Gauge
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drain_warm_fetches_total",
			Help: "Origin fetches by outcome: stored, superseded (invalidated during the fetch), gone (404/410: busted), retry, permanent."}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drain_warm_requests_total",
			Help: "Warm requests acknowledged, by how: fetched (covered by a fetch), covered (already stored, no fetch), delete (busted)."}, []string{"via"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drain_warm_messages_total",
			Help: "Warm handler runs by consumer outcome: ack, retry, dead_letter, transient (the message is held until the outage ends)."}, []string{"outcome"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_warm_coalesced_total",
			Help: "Warm requests satisfied by a fetch that another request started."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "drain_warm_fetch_seconds",
			Help: "Time to fetch and store one URL.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "drain_warm_inflight_fetches",
			Help: "Fetches running now."}),
	}
	for _, c := range []prometheus.Collector{m.fetches, m.requests, m.messages, m.coalesced, m.latency, m.inflight} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("warmer: register metrics: %w", err)
		}
	}
	return m, nil
}
