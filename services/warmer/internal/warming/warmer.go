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
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/routemaster-drain/drain/internal/service"
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

// Options configure a Warmer. JS and Cache are required; QueueName, Consumer.Concurrency and
// HostConcurrency, when zero, take the environment's defaults (config.Default(config.Warmer):
// ROUTEMASTER_QUEUE_NAME, DRAIN_CONCURRENCY, DRAIN_WARM_HOST_CONCURRENCY), and the other
// Consumer fields the stream package's; a zero Coalesce does not coalesce.
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
	jobs    chan *fetchJob // to the fetchers: a send waits for one of the process's fetch slots
	metrics *metrics

	mu      sync.Mutex
	flights map[string]*flight    // only URLs with a fetch running or due
	recent  recentFetches         // when URLs whose flight ended were last fetched
	hosts   map[string]*hostSlots // only hosts with a fetch running or waiting
}

// New checks o and returns a Warmer.
func New(o Options) (*Warmer, error) {
	if o.JS == nil || o.Cache == nil {
		return nil, errors.New("warmer: JS and Cache are required")
	}
	def := config.Default(config.Warmer) // the defaults live in config's variable table only
	if o.QueueName == "" {
		o.QueueName = def.Warm.QueueName
	}
	if o.Consumer.Concurrency <= 0 {
		o.Consumer.Concurrency = def.Consumer.Concurrency
	}
	if o.HostConcurrency <= 0 {
		o.HostConcurrency = def.Warm.HostConcurrency
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
		jobs:    make(chan *fetchJob),
		metrics: m,
		flights: map[string]*flight{},
		recent:  recentFetches{window: o.Coalesce},
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
		ObserveBacklog: w.metrics.backlog.Observe,
	}
}

// Run consumes warm requests until ctx is cancelled, then finishes the messages it holds and
// returns nil.
func (w *Warmer) Run(ctx context.Context) error {
	stop := w.startFetchers()
	defer stop()
	return stream.Consume(ctx, w.o.JS, w.o.Names.Subject(stream.DLQ, ""), w.ConsumerConfig(), w.handle)
}

// fetchJob is one fetch handed to a fetcher.
type fetchJob struct {
	u     string
	index int64
	from  []trace.SpanContext // the spans of the requests the fetch covers
	out   outcome
	done  chan struct{} // receives once the fetch is over
}

var fetchJobs = sync.Pool{New: func() any { return &fetchJob{done: make(chan struct{}, 1)} }}

// startFetchers starts Consumer.Concurrency fetchers (DRAIN_CONCURRENCY), long-lived
// goroutines that run every fetch and store: the deep call chains of the HTTP client and the
// Redis client run on stacks that grew once, not on the fresh goroutine of each message
// (growing those cost the warmer 15% of its CPU). stop ends them; no fetch may be handed
// over after it.
func (w *Warmer) startFetchers() (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range w.o.Consumer.Concurrency {
		wg.Go(func() {
			for {
				select {
				case j := <-w.jobs:
					j.out = w.fetch(j.u, j.index, j.from)
					j.done <- struct{}{}
				case <-quit:
					return
				}
			}
		})
	}
	return func() {
		close(quit)
		wg.Wait()
	}
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
	index := req.Index
	if redelivered(msg) {
		// A redelivery (a crash, a retry) may well be covered already: look before fetching.
		// A first delivery is not looked up: the filter bumped the index just before
		// publishing it, so it is almost never covered, and the conditional store decides.
		st, err := w.o.Cache.State(ctx, req.URL, cache.Variant{})
		if err != nil {
			return stream.RedisFailure(err)
		}
		if st.HasStored && st.Stored >= req.Index {
			w.metrics.requests.WithLabelValues("covered").Inc()
			return nil
		}
		// The index read now is the one to fetch under, even below the request's (a Redis
		// that lost its data starts again from 0).
		index = st.Current
	}
	err = w.await(ctx, req.URL, index)
	if err == nil {
		w.metrics.requests.WithLabelValues("fetched").Inc()
	}
	return err
}

// redelivered reports whether msg was delivered before.
func redelivered(msg stream.Msg) bool {
	md, err := msg.Metadata()
	return err != nil || md.NumDelivered > 1
}

// flight is the fetch work of one URL in this process: the requests waiting for a fetch that
// covers them. It exists only while a fetch of the URL runs or is due, and costs no goroutine
// and no timer of its own: the goroutine of one of its requests, the leader (always
// waiters[0]), runs its fetches. Once a fetch covers the leader's request, the leader hands the
// flight to the oldest request still waiting (a trailing fetch for the requests that came
// during the last one), or ends it when none is left.
type flight struct {
	waiters    []*waiter
	last       time.Time // when the flight's last fetch started (zero: none yet)
	superseded int       // fetches in a row overtaken by an invalidation
}

type waiter struct {
	index int64
	done  chan verdict      // receives the request's result, or the lead; nil for a first leader
	span  trace.SpanContext // the delivery's span: the fetch that covers it is its child or links it
}

// verdict ends a waiting request: its message's result, or lead (run the flight's next fetch).
type verdict struct {
	err  error
	lead bool
}

// await holds a request until a fetch of url covers it, and returns the message's result.
func (w *Warmer) await(ctx context.Context, u string, index int64) error {
	span := trace.SpanContextFromContext(ctx)
	w.mu.Lock()
	if f := w.flights[u]; f != nil {
		wt := &waiter{index: index, done: make(chan verdict, 1), span: span}
		f.waiters = append(f.waiters, wt)
		w.mu.Unlock()
		v := <-wt.done
		if !v.lead {
			return v.err
		}
		return w.lead(u, f)
	}
	f := &flight{waiters: []*waiter{{index: index, span: span}}, last: w.recent.last(u)}
	w.flights[u] = f
	w.mu.Unlock()
	return w.lead(u, f)
}

// lead runs the fetches of f as the goroutine of its first waiter until one covers that
// request: a leading fetch at once for a URL not fetched within Coalesce, then at most one per
// Coalesce while requests keep coming.
func (w *Warmer) lead(u string, f *flight) error {
	for {
		leading := f.last.IsZero()
		if !leading {
			if wait := w.o.Coalesce - time.Since(f.last); wait > 0 {
				time.Sleep(wait) // requests arriving meanwhile join this fetch
			}
		}
		w.mu.Lock()
		atStart := len(f.waiters)
		// A leading fetch runs under the newest request's index (its bump came just before it
		// was published); a later one follows a fetch or a wait during which more bumps may
		// have come, so it reads the URL's index first.
		index := int64(-1)
		if leading {
			for _, wt := range f.waiters {
				index = max(index, wt.index)
			}
		}
		from := spansOf(f.waiters)
		f.last = time.Now()
		w.mu.Unlock()

		out := w.warm(u, index, from)

		w.mu.Lock()
		var resolved []*waiter
		keep := f.waiters[:0:0]
		switch out.kind {
		case outStored, outGone:
			// Covered: every request that was waiting when the fetch started (its event came
			// before the fetch), and any later one whose index the fetch already saw.
			f.superseded = 0
			for i, wt := range f.waiters {
				if i < atStart || wt.index <= out.index {
					resolved = append(resolved, wt)
				} else {
					keep = append(keep, wt)
				}
			}
		case outSuperseded:
			// Only a fetch that read the index first was provably overtaken during the fetch;
			// a leading fetch's request index may have moved before it started.
			if !leading {
				f.superseded++
			}
			if f.superseded < maxSuperseded {
				keep = f.waiters
				break
			}
			f.superseded = 0
			resolved = f.waiters
			out.err = stream.Retry(errors.New("warm: invalidated again during each of the last fetches"))
		default:
			resolved = f.waiters
		}
		f.waiters = keep
		var next *waiter
		if len(resolved) > 0 { // the leader's request, waiters[0], is among them
			if len(keep) > 0 {
				next = keep[0]
			} else {
				delete(w.flights, u)
				w.recent.add(u, f.last)
			}
		}
		w.mu.Unlock()
		if len(resolved) == 0 {
			continue
		}
		if out.err == nil && len(resolved) > 1 {
			w.metrics.coalesced.Add(float64(len(resolved) - 1))
		}
		for _, wt := range resolved[1:] {
			wt.done <- verdict{err: out.err}
		}
		if next != nil {
			next.done <- verdict{lead: true}
		}
		return out.err
	}
}

// recentFetches remembers when URLs whose flight ended were last fetched, for Coalesce after
// that, so a request arriving soon after waits for the throttle instead of fetching at once.
// It is two generations of at most window each: an entry lives between one and two windows,
// and the maps hold only the URLs fetched in the last two windows. Callers hold Warmer.mu.
type recentFetches struct {
	window    time.Duration
	cur, prev map[string]time.Time
	since     time.Time // when cur was started
}

// add records that u's last fetch started at t.
func (r *recentFetches) add(u string, t time.Time) {
	if r.window <= 0 {
		return
	}
	now := time.Now()
	if r.cur == nil {
		r.cur, r.prev, r.since = map[string]time.Time{}, map[string]time.Time{}, now
	}
	if now.Sub(r.since) > r.window {
		clear(r.prev)
		r.prev, r.cur, r.since = r.cur, r.prev, now
	}
	r.cur[u] = t
}

// last returns when u's last fetch started if that was less than window ago, else zero.
func (r *recentFetches) last(u string) time.Time {
	if r.cur == nil {
		return time.Time{}
	}
	t, ok := r.cur[u]
	if !ok {
		t = r.prev[u]
	}
	if time.Since(t) >= r.window {
		return time.Time{}
	}
	return t
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
	index int64 // the index of the entry that now covers the requests (outStored, outGone)
	err   error // the message result when kind is outFailed (or after too many supersessions)
}

// warm fetches u once within the concurrency limits and stores or busts. The fetch runs under
// index, or under the URL's index read first when index is negative; the conditional store
// is then its only Redis command unless the resource is gone. Its span continues the trace
// of the requests it covers (from).
func (w *Warmer) warm(u string, index int64, from []trace.SpanContext) outcome {
	host := hostOf(u)
	hs := w.holdHost(host)
	defer w.releaseHost(host, hs)
	// The host's slot first: a request queued behind a slow host waits there without holding
	// one of the process's slots, so other hosts keep every slot the slow one does not use.
	hs.sem <- struct{}{}
	defer func() { <-hs.sem }()
	j := fetchJobs.Get().(*fetchJob)
	j.u, j.index, j.from = u, index, from
	w.jobs <- j // waits for a free fetcher: one of the process's slots
	<-j.done
	out := j.out
	*j = fetchJob{done: j.done}
	fetchJobs.Put(j)
	return out
}

// fetch is warm's work, on a fetcher.
func (w *Warmer) fetch(u string, index int64, from []trace.SpanContext) outcome {
	w.metrics.inflight.Inc()
	defer w.metrics.inflight.Dec()
	// The fetch is bounded by the API client (ROUTEMASTER_CACHE_TIMEOUT per attempt, three
	// attempts) and the store by the Redis client's timeouts: no deadline of its own.
	ctx, span := startFetch(context.Background(), u, from)
	out := w.fetchAndStore(ctx, u, index)
	endFetch(span, out)
	return out
}

// fetchAndStore refreshes u's cache entry and classifies the result.
func (w *Warmer) fetchAndStore(ctx context.Context, u string, index int64) outcome {
	start := time.Now()
	var res cache.Refreshed
	var err error
	if index < 0 {
		res, err = w.o.Cache.Refresh(ctx, u, cache.Variant{})
	} else {
		res, err = w.o.Cache.RefreshAt(ctx, u, cache.Variant{}, index)
	}
	w.metrics.latency.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, cache.ErrRedis):
		// Reading the index or storing failed: the cache Redis, not the origin.
		w.metrics.fetches.WithLabelValues("retry").Inc()
		return outcome{kind: outFailed, err: stream.RedisFailure(err)}
	case err == nil && res.Stored:
		w.metrics.fetches.WithLabelValues("stored").Inc()
		return outcome{kind: outStored, index: res.Index}
	case err == nil && res.StoredUnder >= res.Index:
		// Invalidated during the fetch, but an entry at or above every waiting request's
		// index is stored already (another replica's fetch, a reader's Get): it covers them.
		w.metrics.fetches.WithLabelValues("superseded").Inc()
		return outcome{kind: outStored, index: res.StoredUnder}
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

// permanent reports errors that a retry cannot fix: a disallowed host or address, an
// over-size body, a bad URL, a redirect or a client error other than 404, 408, 410 and 429.
func permanent(err error) bool {
	switch {
	case errors.Is(err, apiclient.ErrHostNotAllowed), errors.Is(err, apiclient.ErrAddressNotAllowed), errors.Is(err, apiclient.ErrTooLarge),
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

// hostOf returns the host[:port] of an absolute URL (validated by cache.ParseWarmRequest)
// without parsing it whole: the key of the host's fetch slots.
func hostOf(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return strings.ToLower(rest)
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
	backlog   *service.BacklogMetrics
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drain_warmer_fetches_total",
			Help: "Origin fetches by outcome: stored, superseded (invalidated during the fetch), gone (404/410: busted), retry, permanent."}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drain_warmer_requests_total",
			Help: "Warm requests acknowledged, by how: fetched (covered by a fetch), covered (already stored, no fetch), delete (busted)."}, []string{"via"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drain_warmer_messages_total",
			Help: "Warm handler runs by consumer outcome: ack, retry, dead_letter, transient (the message is held until the outage ends)."}, []string{"outcome"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_warmer_coalesced_total",
			Help: "Warm requests satisfied by a fetch that another request started."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "drain_warmer_fetch_duration_seconds",
			Help: "Time to fetch and store one URL.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "drain_warmer_inflight_fetches",
			Help: "Fetches running now."}),
	}
	for _, c := range []prometheus.Collector{m.fetches, m.requests, m.messages, m.coalesced, m.latency, m.inflight} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("warmer: register metrics: %w", err)
		}
	}
	backlog, err := service.NewBacklogMetrics(r)
	if err != nil {
		return nil, err
	}
	m.backlog = backlog
	return m, nil
}
