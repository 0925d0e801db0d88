package cache

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

var (
	//go:embed store.lua
	storeLua    string
	storeScript = redis.NewScript(storeLua)

	//go:embed bust.lua
	bustLua    string
	bustScript = redis.NewScript(bustLua)
)

// ErrNoFetcher is returned by Get on a miss when the Cache has no Fetcher.
var ErrNoFetcher = errors.New("cache: miss and no fetcher configured")

// ErrRedis is wrapped by every error of a command the cache ran on its Redis (connection
// refused, timeout, a failover's LOADING or READONLY, a script error): the cache's storage
// failed, not the origin and not the request. The original go-redis error stays in the chain
// for errors.As, so stream.RedisFailure classifies it: an outage waits without ever
// dead-lettering the request, a reply its key caused (WRONGTYPE) is a budgeted retry.
var ErrRedis = errors.New("cache redis failed")

// redisError keeps the Redis client's message and wraps both ErrRedis and the cause.
type redisError struct{ err error }

func (e *redisError) Error() string   { return e.err.Error() }
func (e *redisError) Unwrap() []error { return []error{ErrRedis, e.err} }

func redisErr(err error) error { return &redisError{err: err} }

// ErrTooLarge is returned (wrapped) when a fetched body exceeds Options.MaxBody; nothing is stored.
var ErrTooLarge = errors.New("cache: body too large")

// Response is a representation of a resource: fetched from the origin or read from the cache.
type Response struct {
	Status    int         // the origin's status (a hit replays it, unlike the gem's constant 200)
	Header    http.Header // on a hit, only the StoredHeaders
	Body      []byte
	FetchedAt time.Time // when the fetch that produced it started
	Index     int64     // the invalidation index it was fetched under
	Cached    bool      // true when served from the cache
}

// Fetcher gets a representation from the origin. A non-2xx answer must be returned as an
// error (the API client's *StatusError); the cache stores only what Fetch returns without error.
type Fetcher interface {
	Fetch(ctx context.Context, url string, v Variant) (*Response, error)
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, url string, v Variant) (*Response, error)

// Fetch calls f.
func (f FetcherFunc) Fetch(ctx context.Context, url string, v Variant) (*Response, error) {
	return f(ctx, url, v)
}

// Hooks are called after cache events (the gem's :cache_hit, :cache_miss and :cache_bust).
// Each may be nil. They run on the caller's goroutine and must be quick.
type Hooks struct {
	OnHit  func(url string)
	OnMiss func(url string)
	OnBust func(url string)
}

// Cache is a read-through HTTP cache in Redis with race-safe invalidation. It is safe for
// concurrent use.
type Cache struct {
	rdb     redis.UniversalClient
	cfg     Options // with defaults
	metrics *metrics
	slots   chan struct{} // Options.Parallel slots shared by Go and GetMany
	tracer  trace.Tracer
}

type metrics struct {
	hits, misses, busts prometheus.Counter
	stores              *prometheus.CounterVec
}

// New returns the Cache of rdb, the cache Redis (ROUTEMASTER_CACHE_REDIS; a
// *redis.ClusterClient works: every script touches one key), with o (zero fields take the
// Default* values). It fails when rdb is nil, on invalid options, or when its metrics cannot
// be registered.
func New(rdb redis.UniversalClient, o Options) (*Cache, error) {
	if rdb == nil {
		return nil, errors.New("cache: New needs a Redis client")
	}
	cfg := o.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Cache{rdb: rdb, cfg: cfg, slots: make(chan struct{}, cfg.Parallel), tracer: cfg.TracerProvider.Tracer(tracerName)}
	if cfg.Registerer != nil {
		m := &metrics{
			hits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_cache_hits_total", Help: "Cache reads served from Redis."}),
			misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_cache_misses_total", Help: "Cache reads that went to the origin."}),
			busts:  prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_cache_busts_total", Help: "URLs busted."}),
			stores: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "drain_cache_stores_total", Help: "Conditional stores of fetched representations, by result (stored, superseded: the index moved during the fetch)."}, []string{"result"}),
		}
		for _, col := range []prometheus.Collector{m.hits, m.misses, m.busts, m.stores} {
			if err := cfg.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("cache: register metrics: %w", err)
			}
		}
		c.metrics = m
	}
	return c, nil
}

// Namespace is the key namespace of the cache.
func (c *Cache) Namespace() string { return c.cfg.Namespace }

// Key returns the Redis key of url.
func (c *Cache) Key(url string) string { return Key(c.cfg.Namespace, url) }

func (c *Cache) ttlMillis() int64 { return c.cfg.Expiry.Milliseconds() }

// Entry is what Peek finds for one variant of a URL.
type Entry struct {
	// Current is the URL's invalidation index (0 when the URL has none).
	Current int64
	// Stored is the variant's stored representation, or nil. Stored.Index is the index it was
	// fetched under.
	Stored *Response
}

// Fresh reports whether the stored representation may be served: it was fetched under the
// current index.
func (e Entry) Fresh() bool { return e.Stored != nil && e.Stored.Index == e.Current }

// Peek reads url's invalidation index and the variant's stored representation in one HMGET,
// without fetching and without calling hooks.
func (c *Cache) Peek(ctx context.Context, url string, v Variant) (Entry, error) {
	fields := append([]string{FieldCurrentIndex}, v.fields()...)
	vals, err := c.rdb.HMGet(ctx, c.Key(url), fields...).Result()
	if err != nil {
		return Entry{}, fmt.Errorf("cache: read %s: %w", url, redisErr(err))
	}
	var e Entry
	if s, ok := vals[0].(string); ok {
		if e.Current, err = strconv.ParseInt(s, 10, 64); err != nil {
			return Entry{}, fmt.Errorf("cache: %s: bad %s %q", url, FieldCurrentIndex, s)
		}
	}
	idx, ok1 := vals[1].(string)
	status, ok2 := vals[2].(string)
	headers, ok3 := vals[3].(string)
	body, ok4 := vals[4].(string)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return e, nil // no complete variant stored
	}
	r := &Response{Body: []byte(body), Header: http.Header{}, Cached: true}
	if r.Index, err = strconv.ParseInt(idx, 10, 64); err != nil {
		return e, nil
	}
	if r.Status, err = strconv.Atoi(status); err != nil {
		return e, nil
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(headers), &h); err != nil {
		return e, nil
	}
	for k, val := range h {
		r.Header.Set(k, val)
	}
	if s, ok := vals[5].(string); ok {
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			r.FetchedAt = time.UnixMilli(ms)
		}
	}
	e.Stored = r
	return e, nil
}

// Get returns the variant of url: from Redis when the stored entry was fetched under the
// current invalidation index (a hit makes no HTTP request), otherwise from the origin through
// the Fetcher, storing the answer if no invalidation happened meanwhile. Origin errors are
// returned as the Fetcher returned them, and nothing is stored.
func (c *Cache) Get(ctx context.Context, url string, v Variant) (*Response, error) {
	e, err := c.read(ctx, url, v)
	if err != nil || e.Fresh() {
		return e.Stored, err
	}
	if c.cfg.Fetcher == nil {
		return nil, ErrNoFetcher
	}
	r, _, err := c.fetchAndStore(ctx, url, v, e.Current)
	return r, err
}

// Lookup returns the fresh stored variant of url, or nil on a miss. It never fetches.
func (c *Cache) Lookup(ctx context.Context, url string, v Variant) (*Response, error) {
	e, err := c.read(ctx, url, v)
	if err != nil || !e.Fresh() {
		return nil, err
	}
	return e.Stored, nil
}

// read is Peek counting a hit or a miss (hooks and metrics).
func (c *Cache) read(ctx context.Context, url string, v Variant) (Entry, error) {
	e, err := c.Peek(ctx, url, v)
	if err != nil {
		return Entry{}, err
	}
	if e.Fresh() {
		c.hit(url)
	} else {
		c.miss(url)
	}
	return e, nil
}

// Refreshed is the outcome of Refresh and RefreshAt.
type Refreshed struct {
	// Index is the invalidation index the fetch ran under: read before it started (Refresh),
	// or the caller's (RefreshAt).
	Index int64
	// Stored reports whether the answer was stored: false when the index moved during the fetch.
	Stored bool
	// Current is the URL's invalidation index the store found: Index when it stored; when the
	// index had moved, the newer value, under which a fetch started now may store. It is only
	// set when the store ran (the fetch answered 2xx within the size limit).
	Current int64
	// StoredUnder is the index the variant's entry in Redis was fetched under once the store
	// ran (Index when it stored, -1 when the variant has no entry): an entry at or above a warm
	// request's index covers the request, whoever stored it. Only set when the store ran.
	StoredUnder int64
	// Response is the origin's answer (nil when the fetch failed).
	Response *Response
}

// Refresh fetches the variant of url from the origin whatever the cache holds, and stores it
// if the invalidation index did not move during the fetch. It reads the index first (a round
// trip before the fetch, one for the store); on a fetch error the result still carries it.
func (c *Cache) Refresh(ctx context.Context, url string, v Variant) (Refreshed, error) {
	if c.cfg.Fetcher == nil {
		return Refreshed{}, ErrNoFetcher
	}
	cur, err := c.Index(ctx, url)
	if err != nil {
		return Refreshed{}, err
	}
	return c.RefreshAt(ctx, url, v, cur)
}

// RefreshAt is Refresh under an index the caller already knows, without reading it: the
// conditional store is the one Redis command (this is what the warmer runs). index must be a
// value url's invalidation index held at or before the start of the call, such as the index
// of a warm request (the filter's bump returned it before publishing) or Refreshed.Current of
// an earlier call; since the index only grows, a store that finds it unchanged proves no
// invalidation happened during the fetch. When the index has moved, nothing is stored and
// Current tells the caller the index to fetch under next. Using an index the URL never held is
// safe too (nothing is stored), only wasteful.
func (c *Cache) RefreshAt(ctx context.Context, url string, v Variant, index int64) (Refreshed, error) {
	if c.cfg.Fetcher == nil {
		return Refreshed{}, ErrNoFetcher
	}
	r, st, err := c.fetchAndStore(ctx, url, v, index)
	return Refreshed{Index: index, Stored: st.stored, Current: st.current, StoredUnder: st.storedUnder, Response: r}, err
}

// Index returns url's current invalidation index (0 when none).
func (c *Cache) Index(ctx context.Context, url string) (int64, error) {
	n, err := c.rdb.HGet(ctx, c.Key(url), FieldCurrentIndex).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cache: read index of %s: %w", url, redisErr(err))
	}
	return n, nil
}

// storeResult is what the store script found and did.
type storeResult struct {
	stored      bool
	current     int64 // the URL's index when the script ran
	storedUnder int64 // the index of the variant's entry after it, -1 for none
}

func (c *Cache) fetchAndStore(ctx context.Context, url string, v Variant, index int64) (*Response, storeResult, error) {
	started := time.Now()
	r, err := c.cfg.Fetcher.Fetch(ctx, url, v)
	if err != nil {
		return nil, storeResult{}, err
	}
	r.FetchedAt = started
	r.Index = index
	r.Cached = false
	if r.Status < 200 || r.Status > 299 {
		return r, storeResult{}, fmt.Errorf("cache: %s answered %d: not stored", url, r.Status)
	}
	if c.cfg.MaxBody > 0 && int64(len(r.Body)) > c.cfg.MaxBody {
		return r, storeResult{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, url, len(r.Body), c.cfg.MaxBody)
	}
	st, err := c.store(ctx, url, v, r)
	return r, st, err
}

// store saves r (fetched under r.Index) as the variant of url, only if url's index is still
// r.Index, in one script run.
func (c *Cache) store(ctx context.Context, url string, v Variant, r *Response) (st storeResult, err error) {
	ctx, span := c.startStore(ctx, url, r)
	defer func() { endStore(span, st.stored, err) }()
	res, err := storeScript.Run(ctx, c.rdb, []string{c.Key(url)},
		r.Index, v.Prefix(), r.Status, storedHeaders(r.Header), r.Body, r.FetchedAt.UnixMilli(), c.ttlMillis()).Int64Slice()
	if err != nil {
		return storeResult{}, fmt.Errorf("cache: store %s: %w", url, redisErr(err))
	}
	if len(res) != 3 {
		return storeResult{}, fmt.Errorf("cache: store %s: %w", url, redisErr(fmt.Errorf("script answered %v", res)))
	}
	st = storeResult{stored: res[0] == 1, current: res[1], storedUnder: res[2]}
	if c.metrics != nil {
		result := "stored"
		if !st.stored {
			result = "superseded"
		}
		c.metrics.stores.WithLabelValues(result).Inc()
	}
	return st, nil
}

// storedHeaders is the JSON object of the StoredHeaders present in h, in their order (the
// object json.Marshal writes for the map of them, without its reflection).
func storedHeaders(h http.Header) []byte {
	b := make([]byte, 0, 64)
	b = append(b, '{')
	for _, name := range StoredHeaders {
		vals := h[name] // StoredHeaders are canonical, as http.Header's keys
		if len(vals) == 0 {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
		b = append(b, ':')
		b = appendJSONString(b, joinValues(vals))
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func joinValues(vals []string) string {
	s := vals[0]
	for _, v := range vals[1:] {
		s += ", " + v
	}
	return s
}

// Invalidate bumps the invalidation index of every URL (HINCRBY current_index 1) and resets
// its TTL, in one round trip for the whole batch (one pipeline per Redis node; no MULTI/EXEC,
// which replication.Wait could not follow with a WAIT, and each HINCRBY is atomic by itself:
// a PEXPIRE that a crash skips only leaves the older TTL). Stored variants stay but
// are stale from now on, and a fetch that started before cannot store. It returns each URL's
// new index, in order.
func (c *Cache) Invalidate(ctx context.Context, urls ...string) ([]int64, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.IntCmd, len(urls))
	ttl := c.cfg.Expiry
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range urls {
			k := c.Key(u)
			cmds[i] = p.HIncrBy(ctx, k, FieldCurrentIndex, 1)
			p.PExpire(ctx, k, ttl)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache: invalidate %d URLs: %w", len(urls), redisErr(err))
	}
	out := make([]int64, len(urls))
	for i, cmd := range cmds {
		out[i] = cmd.Val()
	}
	return out, nil
}

// Bust deletes every stored variant of url, keeps its invalidation index and bumps it (so a
// fetch that started before the bust cannot store afterwards), and resets the TTL. It returns
// the new index.
func (c *Cache) Bust(ctx context.Context, url string) (int64, error) {
	_, n, err := c.bust(ctx, url, "")
	return n, err
}

// BustIf is Bust only while url's invalidation index is at most index: the warmer busts for a
// delete (or a 404) seen at index, unless a newer event has invalidated the URL since, in
// which case that event decides. It reports whether it busted, and the index after the call.
func (c *Cache) BustIf(ctx context.Context, url string, index int64) (bool, int64, error) {
	return c.bust(ctx, url, strconv.FormatInt(index, 10))
}

func (c *Cache) bust(ctx context.Context, url, atMost string) (bool, int64, error) {
	res, err := bustScript.Run(ctx, c.rdb, []string{c.Key(url)}, c.ttlMillis(), atMost).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("cache: bust %s: %w", url, redisErr(err))
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("cache: bust %s: script answered %v", url, res)
	}
	if res[0] != 1 {
		return false, res[1], nil
	}
	if c.metrics != nil {
		c.metrics.busts.Inc()
	}
	if c.cfg.Hooks.OnBust != nil {
		c.cfg.Hooks.OnBust(url)
	}
	return true, res[1], nil
}

// State is the invalidation state of one variant of a URL, without its body.
type State struct {
	Current   int64 // the URL's invalidation index
	Stored    int64 // the index the stored variant was fetched under (when HasStored)
	HasStored bool
}

// State reads url's invalidation index and the index of the variant's stored entry, without
// the body (one HMGET of two fields).
func (c *Cache) State(ctx context.Context, url string, v Variant) (State, error) {
	vals, err := c.rdb.HMGet(ctx, c.Key(url), FieldCurrentIndex, v.Prefix()+suffixIndex).Result()
	if err != nil {
		return State{}, fmt.Errorf("cache: read %s: %w", url, redisErr(err))
	}
	var s State
	if v, ok := vals[0].(string); ok {
		s.Current, _ = strconv.ParseInt(v, 10, 64)
	}
	if v, ok := vals[1].(string); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			s.Stored, s.HasStored = n, true
		}
	}
	return s, nil
}

func (c *Cache) hit(url string) {
	if c.metrics != nil {
		c.metrics.hits.Inc()
	}
	if c.cfg.Hooks.OnHit != nil {
		c.cfg.Hooks.OnHit(url)
	}
}

func (c *Cache) miss(url string) {
	if c.metrics != nil {
		c.metrics.misses.Inc()
	}
	if c.cfg.Hooks.OnMiss != nil {
		c.cfg.Hooks.OnMiss(url)
	}
}
