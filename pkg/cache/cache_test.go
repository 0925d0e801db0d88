package cache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

// origin is a test API: every resource answers "<path> v<version> <accept> <lang>"; the version
// is bumped by the test. A request can be held until released.
type origin struct {
	srv      *httptest.Server
	requests atomic.Int64
	version  atomic.Int64
	status   atomic.Int64
	mu       sync.Mutex
	hold     chan struct{} // when set, requests wait for it to close
	started  chan struct{} // receives one value per request that started
}

func newOrigin(t *testing.T) *origin {
	o := &origin{started: make(chan struct{}, 100)}
	o.version.Store(1)
	o.status.Store(200)
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		body := fmt.Sprintf("%s v%d %s %s", r.URL.Path, o.version.Load(), r.Header.Get("Accept"), r.Header.Get("Accept-Language"))
		o.mu.Lock()
		hold := o.hold
		o.mu.Unlock()
		select {
		case o.started <- struct{}{}:
		default:
		}
		if hold != nil {
			<-hold
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v`+strconv.FormatInt(o.version.Load(), 10)+`"`)
		w.Header().Set("X-Private", "not stored")
		w.WriteHeader(int(o.status.Load()))
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *origin) holdRequests() chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hold = make(chan struct{})
	return o.hold
}

func (o *origin) release(ch chan struct{}) {
	o.mu.Lock()
	o.hold = nil
	o.mu.Unlock()
	close(ch)
}

// statusError is how the test fetcher reports a non-2xx answer.
type statusError struct{ code int }

func (e *statusError) Error() string { return "status " + strconv.Itoa(e.code) }

// httpFetcher is a plain net/http Fetcher for the tests.
func httpFetcher() cache.Fetcher {
	return cache.FetcherFunc(func(ctx context.Context, url string, v cache.Variant) (*cache.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", v.Accept())
		if v.Locale != "" {
			req.Header.Set("Accept-Language", v.Locale)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return nil, err
		}
		if res.StatusCode/100 != 2 {
			return nil, &statusError{res.StatusCode}
		}
		return &cache.Response{Status: res.StatusCode, Header: res.Header, Body: body}, nil
	})
}

type env struct {
	rdb    *redis.Client
	origin *origin
	cache  *cache.Cache
	reg    *prometheus.Registry
	hits   atomic.Int64
	busts  atomic.Int64
}

func setup(t *testing.T) *env {
	t.Helper()
	r := draintest.StartRedis(t)
	e := &env{rdb: r.Client(t, 0), origin: newOrigin(t), reg: prometheus.NewRegistry()}
	c, err := cache.New(e.rdb, cache.Options{
		Namespace: "ns", Expiry: time.Hour, Fetcher: httpFetcher(), Registerer: e.reg,
		Hooks: cache.Hooks{OnHit: func(string) { e.hits.Add(1) }, OnBust: func(string) { e.busts.Add(1) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.cache = c
	return e
}

func (e *env) url(path string) string { return e.origin.srv.URL + path }

func mustGet(t *testing.T, c *cache.Cache, url string, v cache.Variant) *cache.Response {
	t.Helper()
	r, err := c.Get(context.Background(), url, v)
	if err != nil {
		t.Fatalf("Get %s: %v", url, err)
	}
	return r
}

func TestGetReadThrough(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/widgets/1")

	first := mustGet(t, e.cache, u, cache.Variant{})
	if first.Cached || string(first.Body) != "/widgets/1 v1 application/json " {
		t.Fatalf("first Get: cached=%v body=%q", first.Cached, first.Body)
	}
	second := mustGet(t, e.cache, u, cache.Variant{})
	if !second.Cached || string(second.Body) != string(first.Body) || second.Status != 200 {
		t.Fatalf("second Get: cached=%v status=%d body=%q", second.Cached, second.Status, second.Body)
	}
	if got := e.origin.requests.Load(); got != 1 {
		t.Fatalf("origin saw %d requests, want 1 (a hit makes no request)", got)
	}
	if second.Header.Get("Content-Type") != "application/json" || second.Header.Get("Etag") != `"v1"` || second.Header.Get("X-Private") != "" {
		t.Fatalf("stored headers: %v", second.Header)
	}

	// What another language sees in Redis.
	key := "ns:cache:{" + u + "}"
	h, err := e.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"current_index": "0", "v:,l:,index": "0", "v:,l:,status": "200",
		"v:,l:,body":    "/widgets/1 v1 application/json ",
		"v:,l:,headers": `{"Content-Type":"application/json","Etag":"\"v1\""}`,
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("field %q = %q, want %q", k, h[k], v)
		}
	}
	if _, ok := h["v:,l:,fetched_at"]; !ok {
		t.Errorf("no fetched_at field: %v", h)
	}
	if ttl := e.rdb.TTL(ctx, key).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL %v, want (0, 1h]", ttl)
	}
	if got, _ := draintest.Metric(t, e.reg, "drain_cache_hits_total"); got != 1 {
		t.Fatalf("hits metric %v", got)
	}
	if e.hits.Load() != 1 {
		t.Fatalf("OnHit called %d times", e.hits.Load())
	}
}

func TestVariantsAreSeparate(t *testing.T) {
	e := setup(t)
	u := e.url("/w")
	plain := mustGet(t, e.cache, u, cache.Variant{})
	v2 := mustGet(t, e.cache, u, cache.Variant{Version: "2", Locale: "fr"})
	if string(plain.Body) != "/w v1 application/json " || string(v2.Body) != "/w v1 application/json;v=2 fr" {
		t.Fatalf("bodies %q / %q", plain.Body, v2.Body)
	}
	// Both are now hits, each with its own representation (no memoised headers, gem bug 2 in docs/gem.md).
	if r := mustGet(t, e.cache, u, cache.Variant{Version: "2", Locale: "fr"}); !r.Cached || string(r.Body) != string(v2.Body) {
		t.Fatalf("v2 hit: %+v", r)
	}
	if r := mustGet(t, e.cache, u, cache.Variant{}); !r.Cached || string(r.Body) != string(plain.Body) {
		t.Fatalf("plain hit: %+v", r)
	}
	if n := e.origin.requests.Load(); n != 2 {
		t.Fatalf("origin requests %d, want 2", n)
	}
}

func TestInvalidateMakesEntriesStale(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a, b := e.url("/a"), e.url("/b")
	mustGet(t, e.cache, a, cache.Variant{})
	mustGet(t, e.cache, b, cache.Variant{})

	e.origin.version.Store(2)
	idx, err := e.cache.Invalidate(ctx, a, b, a)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(idx) != "[1 1 2]" {
		t.Fatalf("indexes %v, want [1 1 2]", idx)
	}
	for _, u := range []string{a, b} {
		// The stale body stays in Redis but is not served.
		if r, err := e.cache.Lookup(ctx, u, cache.Variant{}); err != nil || r != nil {
			t.Fatalf("Lookup after invalidate: %v %v", r, err)
		}
		r := mustGet(t, e.cache, u, cache.Variant{})
		if r.Cached || string(r.Body) != u[len(e.origin.srv.URL):]+" v2 application/json " {
			t.Fatalf("after invalidate: %+v", r)
		}
		if ttl := e.rdb.TTL(ctx, e.cache.Key(u)).Val(); ttl <= 0 {
			t.Fatalf("no TTL after invalidate")
		}
	}
	// Invalidating a URL never cached creates its index with a TTL.
	c := e.url("/never")
	if idx, err := e.cache.Invalidate(ctx, c); err != nil || idx[0] != 1 {
		t.Fatalf("invalidate new URL: %v %v", idx, err)
	}
	if ttl := e.rdb.TTL(ctx, e.cache.Key(c)).Val(); ttl <= 0 {
		t.Fatalf("no TTL on a fresh index")
	}
}

// The gem shares one index across variants: a variant fetched after an invalidation made an
// older variant look fresh (gem bug 1 in docs/gem.md). Here each variant keeps its own.
func TestCrossVariantStalenessFixed(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/x")
	mustGet(t, e.cache, u, cache.Variant{Version: "1"}) // A at index 0
	e.origin.version.Store(2)
	if _, err := e.cache.Invalidate(ctx, u); err != nil { // index 1
		t.Fatal(err)
	}
	mustGet(t, e.cache, u, cache.Variant{Version: "2"}) // B fetched and stored at index 1
	a := mustGet(t, e.cache, u, cache.Variant{Version: "1"})
	if a.Cached || string(a.Body) != "/x v2 application/json;v=1 " {
		t.Fatalf("variant A served stale: cached=%v body=%q", a.Cached, a.Body)
	}
}

// A fetch that started before an invalidation finishes after it: its answer is returned to
// its caller but neither stored nor served afterwards.
func TestSlowFetchVersusInvalidate(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/slow")
	mustGet(t, e.cache, u, cache.Variant{}) // v1 at index 0
	if _, err := e.cache.Invalidate(ctx, u); err != nil {
		t.Fatal(err)
	}

	<-e.origin.started // the first Get's request
	hold := e.origin.holdRequests()
	f := e.cache.Go(ctx, u, cache.Variant{}) // reads index 1, then blocks at the origin
	<-e.origin.started
	// An event arrives while the fetch is under way: its answer may predate the change.
	e.origin.version.Store(2)
	if _, err := e.cache.Invalidate(ctx, u); err != nil { // index 2
		t.Fatal(err)
	}
	e.origin.release(hold)
	if _, err := f.Wait(); err != nil {
		t.Fatal(err)
	}
	entry, err := e.cache.Peek(ctx, u, cache.Variant{})
	if err != nil {
		t.Fatal(err)
	}
	if entry.Current != 2 || entry.Fresh() || entry.Stored.Index != 0 {
		t.Fatalf("slow fetch stored over the invalidation: current=%d stored index=%d", entry.Current, entry.Stored.Index)
	}
	r := mustGet(t, e.cache, u, cache.Variant{})
	if r.Cached || r.Index != 2 {
		t.Fatalf("after slow fetch: cached=%v index=%d", r.Cached, r.Index)
	}
	if r := mustGet(t, e.cache, u, cache.Variant{}); !r.Cached {
		t.Fatal("fresh fetch at index 2 was not stored")
	}
}

// The gem's bust deleted the hash, resetting the index: a fetch that started before the bust
// then stored its stale answer as a hit. Bust here keeps and bumps the index.
func TestSlowFetchVersusBust(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/gone")
	hold := e.origin.holdRequests()
	f := e.cache.Go(ctx, u, cache.Variant{}) // reads index 0
	<-e.origin.started
	n, err := e.cache.Bust(ctx, u)
	if err != nil || n != 1 {
		t.Fatalf("Bust: %d %v", n, err)
	}
	e.origin.release(hold)
	if _, err := f.Wait(); err != nil {
		t.Fatal(err)
	}
	if r, err := e.cache.Lookup(ctx, u, cache.Variant{}); err != nil || r != nil {
		t.Fatalf("the fetch that raced the bust was stored: %v %v", r, err)
	}
	h := e.rdb.HGetAll(ctx, e.cache.Key(u)).Val()
	if len(h) != 1 || h["current_index"] != "1" {
		t.Fatalf("hash after bust: %v", h)
	}
	if e.busts.Load() != 1 {
		t.Fatalf("OnBust called %d times", e.busts.Load())
	}
}

// Bust and Invalidate interleave in either order without ever moving the index backwards.
func TestBustAndInvalidateInterleavings(t *testing.T) {
	for _, order := range []string{"bust-then-invalidate", "invalidate-then-bust"} {
		t.Run(order, func(t *testing.T) {
			e := setup(t)
			ctx := context.Background()
			u := e.url("/i")
			mustGet(t, e.cache, u, cache.Variant{})
			mustGet(t, e.cache, u, cache.Variant{Locale: "de"})
			var last int64
			step := func(name string) {
				var n int64
				var err error
				if name == "bust" {
					n, err = e.cache.Bust(ctx, u)
				} else {
					var ns []int64
					ns, err = e.cache.Invalidate(ctx, u)
					if err == nil {
						n = ns[0]
					}
				}
				if err != nil || n != last+1 {
					t.Fatalf("%s: index %d (after %d), err %v", name, n, last, err)
				}
				last = n
			}
			if order == "bust-then-invalidate" {
				step("bust")
				step("invalidate")
			} else {
				step("invalidate")
				step("bust")
			}
			for _, v := range []cache.Variant{{}, {Locale: "de"}} {
				entry, err := e.cache.Peek(ctx, u, v)
				if err != nil || entry.Fresh() || entry.Current != 2 {
					t.Fatalf("variant %+v: fresh=%v current=%d err=%v", v, entry.Fresh(), entry.Current, err)
				}
			}
			if r := mustGet(t, e.cache, u, cache.Variant{}); r.Cached || r.Index != 2 {
				t.Fatalf("refetch: %+v", r)
			}
			if ttl := e.rdb.TTL(ctx, e.cache.Key(u)).Val(); ttl <= 0 {
				t.Fatal("no TTL")
			}
		})
	}
}

func TestErrorsAreNotStored(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/missing")
	e.origin.status.Store(404)
	_, err := e.cache.Get(ctx, u, cache.Variant{})
	var se *statusError
	if !errors.As(err, &se) || se.code != 404 {
		t.Fatalf("Get on 404: %v", err)
	}
	if n := e.rdb.Exists(ctx, e.cache.Key(u)).Val(); n != 0 {
		t.Fatal("an error response was stored")
	}
	// A 201 is stored and replayed as 201 (the gem replays 200).
	e.origin.status.Store(201)
	mustGet(t, e.cache, u, cache.Variant{})
	if r := mustGet(t, e.cache, u, cache.Variant{}); !r.Cached || r.Status != 201 {
		t.Fatalf("replayed status %d cached=%v", r.Status, r.Cached)
	}
}

func TestMaxBody(t *testing.T) {
	e := setup(t)
	c, err := cache.New(e.rdb, cache.Options{Namespace: "ns", Fetcher: httpFetcher(), MaxBody: 5})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), e.url("/big"), cache.Variant{})
	if !errors.Is(err, cache.ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	if n := e.rdb.Exists(context.Background(), c.Key(e.url("/big"))).Val(); n != 0 {
		t.Fatal("an over-size body was stored")
	}
}

func TestNoFetcher(t *testing.T) {
	e := setup(t)
	c, _ := cache.New(e.rdb, cache.Options{Namespace: "ns"})
	if _, err := c.Get(context.Background(), e.url("/a"), cache.Variant{}); !errors.Is(err, cache.ErrNoFetcher) {
		t.Fatalf("err %v", err)
	}
	if e.origin.requests.Load() != 0 {
		t.Fatal("fetched without a fetcher")
	}
}

func TestGetManyAndFutures(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	var urls []string
	for i := range 40 {
		urls = append(urls, e.url(fmt.Sprintf("/many/%d", i)))
	}
	e.origin.status.Store(200)
	res := e.cache.GetMany(ctx, urls, cache.Variant{})
	for i, r := range res {
		if r.Err != nil || string(r.Response.Body) != fmt.Sprintf("/many/%d v1 application/json ", i) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	again := e.cache.GetMany(ctx, urls, cache.Variant{})
	for i, r := range again {
		if r.Err != nil || !r.Response.Cached {
			t.Fatalf("second round %d not a hit: %+v", i, r)
		}
	}
	if n := e.origin.requests.Load(); n != 40 {
		t.Fatalf("origin requests %d, want 40", n)
	}
	f := e.cache.Go(ctx, urls[0], cache.Variant{})
	<-f.Done()
	if r, err := f.Wait(); err != nil || !r.Cached {
		t.Fatalf("future: %+v %v", r, err)
	}
}

func TestFixTTL(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	for i := range 250 {
		k := cache.Key("ns", fmt.Sprintf("https://x/%d", i))
		e.rdb.HSet(ctx, k, "current_index", 1)
		if i%2 == 0 {
			e.rdb.Expire(ctx, k, 10*time.Minute) // already has a TTL: left alone
		}
	}
	e.rdb.Set(ctx, "ns:dirtymap:items-like", "x", 0) // outside the cache: left alone
	e.rdb.HSet(ctx, "other:cache:{https://x/1}", "current_index", 1)

	rep, err := e.cache.FixTTL(ctx, cache.FixTTLOptions{Batch: 50})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != 250 || rep.Fixed != 125 {
		t.Fatalf("report %+v, want 250 scanned, 125 fixed", rep)
	}
	for i := range 250 {
		ttl := e.rdb.TTL(ctx, cache.Key("ns", fmt.Sprintf("https://x/%d", i))).Val()
		want := time.Hour
		if i%2 == 0 {
			want = 10 * time.Minute
		}
		if ttl <= want-time.Minute || ttl > want {
			t.Fatalf("key %d TTL %v, want about %v", i, ttl, want)
		}
	}
	if e.rdb.TTL(ctx, "ns:dirtymap:items-like").Val() != -1 || e.rdb.TTL(ctx, "other:cache:{https://x/1}").Val() != -1 {
		t.Fatal("FixTTL touched keys outside its namespace's cache")
	}
	rep, _ = e.cache.FixTTL(ctx, cache.FixTTLOptions{})
	if rep.Fixed != 0 {
		t.Fatalf("second run fixed %d", rep.Fixed)
	}
}

func TestBustIfAndState(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/b")
	mustGet(t, e.cache, u, cache.Variant{})
	if s, err := e.cache.State(ctx, u, cache.Variant{}); err != nil || s != (cache.State{Current: 0, Stored: 0, HasStored: true}) {
		t.Fatalf("State %+v %v", s, err)
	}
	e.cache.Invalidate(ctx, u) // 1
	e.cache.Invalidate(ctx, u) // 2
	// A delete seen at index 1 is overtaken by the event at index 2: nothing busted.
	if busted, n, err := e.cache.BustIf(ctx, u, 1); err != nil || busted || n != 2 {
		t.Fatalf("BustIf(1): %v %d %v", busted, n, err)
	}
	if s, _ := e.cache.State(ctx, u, cache.Variant{}); !s.HasStored {
		t.Fatal("BustIf busted despite a newer index")
	}
	if busted, n, err := e.cache.BustIf(ctx, u, 2); err != nil || !busted || n != 3 {
		t.Fatalf("BustIf(2): %v %d %v", busted, n, err)
	}
	if s, _ := e.cache.State(ctx, u, cache.Variant{}); s.HasStored || s.Current != 3 {
		t.Fatalf("after BustIf: %+v", s)
	}
}

func TestRefresh(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/r")
	mustGet(t, e.cache, u, cache.Variant{})
	e.origin.version.Store(2)
	// Refresh fetches even though the entry is fresh, and stores the new answer.
	res, err := e.cache.Refresh(ctx, u, cache.Variant{})
	if err != nil || !res.Stored || res.Index != 0 || string(res.Response.Body) != "/r v2 application/json " {
		t.Fatalf("Refresh: %+v %v", res, err)
	}
	if r := mustGet(t, e.cache, u, cache.Variant{}); !r.Cached || string(r.Body) != "/r v2 application/json " {
		t.Fatalf("after Refresh: %+v", r)
	}
	e.origin.status.Store(410)
	e.cache.Invalidate(ctx, u)
	res, err = e.cache.Refresh(ctx, u, cache.Variant{})
	if err == nil || res.Index != 1 || res.Stored {
		t.Fatalf("Refresh on 410: %+v %v", res, err)
	}
}

// Variants lists what is stored for a URL, bodies left out, and tells fresh from stale.
func TestVariants(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/v")
	if s, err := e.cache.Variants(ctx, u); err != nil || s.Current != 0 || len(s.Variants) != 0 || s.TTL != 0 {
		t.Fatalf("uncached URL: %+v %v", s, err)
	}
	before := time.Now().Add(-time.Second)
	mustGet(t, e.cache, u, cache.Variant{Version: "2", Locale: "fr"})
	mustGet(t, e.cache, u, cache.Variant{})
	e.cache.Invalidate(ctx, u)
	mustGet(t, e.cache, u, cache.Variant{Locale: "en-GB"})
	s, err := e.cache.Variants(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if s.Current != 1 || len(s.Variants) != 3 || s.TTL <= 0 || s.TTL > time.Hour {
		t.Fatalf("Variants: %+v", s)
	}
	want := []struct {
		v     cache.Variant
		index int64
		body  string
	}{
		{cache.Variant{}, 0, "/v v1 application/json "},
		{cache.Variant{Locale: "en-GB"}, 1, "/v v1 application/json en-GB"},
		{cache.Variant{Version: "2", Locale: "fr"}, 0, "/v v1 application/json;v=2 fr"},
	}
	for i, w := range want {
		got := s.Variants[i]
		if got.Variant != w.v || got.Index != w.index || got.Status != 200 || got.BodyBytes != int64(len(w.body)) ||
			got.FetchedAt.Before(before) || got.FetchedAt.After(time.Now()) || s.Fresh(got) != (w.index == 1) {
			t.Fatalf("variant %d: %+v, want %+v", i, got, w)
		}
	}
	// Reading changed nothing: no hit, no miss, no request.
	if n := e.origin.requests.Load(); n != 3 {
		t.Fatalf("origin requests %d", n)
	}
	if hits, _ := draintest.Metric(t, e.reg, "drain_cache_hits_total"); hits != 0 {
		t.Fatalf("Variants counted %v hits", hits)
	}
	e.rdb.Persist(ctx, "ns:cache:{"+u+"}")
	if s, _ := e.cache.Variants(ctx, u); s.TTL != -1 {
		t.Fatalf("TTL of a key without one: %v", s.TTL)
	}
}

// RefreshAt stores under the index the caller knows (a warm request's) without reading it
// first; an invalidation during the fetch, or an index already overtaken, stores nothing and
// reports the index to fetch under next, and an older index never overwrites a newer entry.
func TestRefreshAt(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/at")
	idx, err := e.cache.Invalidate(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.cache.RefreshAt(ctx, u, cache.Variant{}, idx[0])
	if err != nil || !res.Stored || res.Index != 1 || res.Current != 1 || res.StoredUnder != 1 {
		t.Fatalf("RefreshAt(1): %+v %v", res, err)
	}
	if r, _ := e.cache.Lookup(ctx, u, cache.Variant{}); r == nil || string(r.Body) != "/at v1 application/json " {
		t.Fatalf("after RefreshAt: %+v", r)
	}

	// An invalidation while the origin answers: the answer is not stored.
	hold := e.origin.holdRequests()
	done := make(chan cache.Refreshed, 1)
	go func() {
		res, _ := e.cache.RefreshAt(ctx, u, cache.Variant{}, 1)
		done <- res
	}()
	<-e.origin.started
	e.origin.version.Store(2)
	if _, err := e.cache.Invalidate(ctx, u); err != nil {
		t.Fatal(err)
	}
	e.origin.release(hold)
	if res := <-done; res.Stored || res.Current != 2 || res.StoredUnder != 1 {
		t.Fatalf("RefreshAt raced by an invalidation: %+v", res)
	}
	if r, _ := e.cache.Lookup(ctx, u, cache.Variant{}); r != nil {
		t.Fatalf("a stale entry is served after the invalidation: %s", r.Body)
	}
	// The index it reported is the one to fetch under.
	if res, err := e.cache.RefreshAt(ctx, u, cache.Variant{}, 2); err != nil || !res.Stored || res.StoredUnder != 2 {
		t.Fatalf("RefreshAt(Current): %+v %v", res, err)
	}

	// A late request (index 1) after the entry at 2: nothing is overwritten, and the entry
	// that covers it is reported.
	e.origin.version.Store(3)
	res, err = e.cache.RefreshAt(ctx, u, cache.Variant{}, 1)
	if err != nil || res.Stored || res.Current != 2 || res.StoredUnder != 2 {
		t.Fatalf("RefreshAt(1) after 2: %+v %v", res, err)
	}
	if r, _ := e.cache.Lookup(ctx, u, cache.Variant{}); r == nil || string(r.Body) != "/at v2 application/json " {
		t.Fatalf("the entry at 2 was overwritten: %+v", r)
	}
	// A URL without an entry reports -1.
	res, err = e.cache.RefreshAt(ctx, e.url("/none"), cache.Variant{}, 7)
	if err != nil || res.Stored || res.Current != 0 || res.StoredUnder != -1 {
		t.Fatalf("RefreshAt on a URL never invalidated: %+v %v", res, err)
	}
}

// Stored headers keep their values through the store, whatever bytes they hold: several
// values joined, quotes, control characters, non-ASCII text; invalid UTF-8 reads back as
// U+FFFD, as encoding/json would store it; headers outside StoredHeaders are dropped.
func TestStoredHeadersRoundTrip(t *testing.T) {
	r := draintest.StartRedis(t)
	h := http.Header{
		"Link":         {`<https://x/?a="b">; rel="next"`, `<https://x/1>; rel="first"`},
		"Content-Type": {"application/json; charset=\"utf-8\"\t\x01"},
		"Etag":         {"\"caf\u00e9\xff\\\""},
		"X-Private":    {"dropped"},
	}
	c, err := cache.New(r.Client(t, 0), cache.Options{Fetcher: cache.FetcherFunc(func(context.Context, string, cache.Variant) (*cache.Response, error) {
		return &cache.Response{Status: 200, Header: h, Body: []byte("{}")}, nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Get(ctx, "https://x.example/h", cache.Variant{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Lookup(ctx, "https://x.example/h", cache.Variant{})
	if err != nil || got == nil {
		t.Fatalf("Lookup: %v %v", got, err)
	}
	want := http.Header{
		"Link":         {`<https://x/?a="b">; rel="next", <https://x/1>; rel="first"`},
		"Content-Type": {"application/json; charset=\"utf-8\"\t\x01"},
		"Etag":         {"\"caf\u00e9\ufffd\\\""},
	}
	if fmt.Sprint(got.Header) != fmt.Sprint(want) {
		t.Fatalf("headers read back\n%q\nwant\n%q", got.Header, want)
	}
}
