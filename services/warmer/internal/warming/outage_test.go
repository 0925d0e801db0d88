package warming

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// A refresh request (a stale event's) fetches whatever the cache holds: the origin's 404
// busts what was stored, its 200 stores the current version.
func TestRefreshRequests(t *testing.T) {
	w := newWorld(t)
	w.startWarmer()
	w.event("/gone-now", cache.WarmCreate)
	eventually(t, 10*time.Second, "/gone-now warm", func() bool { return w.cached("/gone-now") != "" })

	// The resource disappeared at the origin; the only event left is a stale one.
	w.api.mu.Lock()
	delete(w.api.version, "/gone-now")
	w.api.version["/fresh"] = 3
	w.api.mu.Unlock()
	w.publish(w.api.url("/gone-now"), cache.WarmRefresh)
	w.publish(w.api.url("/fresh"), cache.WarmRefresh)
	w.quiet(10 * time.Second)

	if w.storedAnything("/gone-now") {
		t.Fatal("/gone-now: a refresh answered 404 left a stored variant")
	}
	if got, want := w.cached("/fresh"), w.api.body("/fresh"); got != want || !strings.Contains(got, `"v":3`) {
		t.Fatalf("/fresh cached %q, want %q", got, want)
	}
	if n := w.deadLetters(); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// While the cache Redis is down, warm requests (fetches and deletes) are held and probed far
// beyond DRAIN_MAX_DELIVER without a dead letter or a budgeted retry, and all of them take
// effect once Redis is back.
func TestRedisOutageIsRetriedWithoutDeadLetters(t *testing.T) {
	w := newWorld(t)
	w.event("/del", cache.WarmCreate) // stored before the outage, deleted during it
	_, reg := w.startWarmer("DRAIN_MAX_DELIVER=2")
	eventually(t, 10*time.Second, "/del warm", func() bool { return w.cached("/del") != "" })
	delIndex, err := w.cache.Invalidate(context.Background(), w.api.url("/del"))
	if err != nil {
		t.Fatal(err)
	}
	w.redis.Stop()
	const urls = 5
	w.api.mu.Lock()
	delete(w.api.version, "/del")
	for i := range urls {
		w.api.version[fmt.Sprintf("/r/%d", i)] = 1
	}
	w.api.mu.Unlock()
	publish := func(path, typ string, index int64) {
		m, err := cache.WarmMsg(w.names.Subject(stream.Warm, ""), cache.WarmRequest{URL: w.api.url(path), Type: typ, T: time.Now().UnixMilli(), Index: index})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	publish("/del", cache.WarmDelete, delIndex[0])
	for i := range urls {
		publish(fmt.Sprintf("/r/%d", i), cache.WarmCreate, 1)
	}
	// With DRAIN_MAX_DELIVER=2 an ordinary retry would be dead-lettered at the second delivery;
	// wait until the held messages have failed three times as often as there are messages.
	eventually(t, 30*time.Second, "probes during the Redis outage", func() bool {
		return metricValue(t, reg, "drain_warmer_messages_total", "outcome", "transient") >= 3*(urls+1)
	})
	if n := w.deadLetters(); n != 0 {
		t.Fatalf("%d dead letters during a Redis outage", n)
	}
	if n := metricValue(t, reg, "drain_warmer_messages_total", "outcome", "retry"); n != 0 {
		t.Fatalf("%v budgeted retries during a Redis outage", n)
	}
	w.redis.Start() // empty: no AOF, so the indexes start again from 0
	w.quiet(30 * time.Second)
	for i := range urls {
		p := fmt.Sprintf("/r/%d", i)
		if got, want := w.cached(p), w.api.body(p); got != want {
			t.Fatalf("%s cached %q, want %q", p, got, want)
		}
	}
	if w.storedAnything("/del") {
		t.Fatal("/del still stored")
	}
	if n := w.deadLetters(); n != 0 {
		t.Fatalf("%d dead letters after the Redis outage", n)
	}
}

// A request whose index is above the URL's (a cache Redis that lost its data and started
// again from 0) is stored under the index the refused store reports, at its first delivery.
func TestRequestAboveTheURLsIndexIsStored(t *testing.T) {
	w := newWorld(t)
	_, reg := w.startWarmer()
	w.api.mu.Lock()
	w.api.version["/lost"] = 1
	w.api.mu.Unlock()
	m, err := cache.WarmMsg(w.names.Subject(stream.Warm, ""), cache.WarmRequest{URL: w.api.url("/lost"), Type: cache.WarmUpdate, T: 1, Index: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	w.quiet(10 * time.Second)
	if got, want := w.cached("/lost"), w.api.body("/lost"); got != want {
		t.Fatalf("/lost cached %q, want %q", got, want)
	}
	if n := metricValue(t, reg, "drain_warmer_messages_total", "outcome", "retry"); n != 0 {
		t.Fatalf("%v retries", n)
	}
	if n := w.api.fetchesOf("/lost"); n != 2 {
		t.Fatalf("%d fetches, want 2 (one refused under 5, one stored under 0)", n)
	}
}

// The cache's Redis errors reach the warmer classified as every stage classifies them: a
// WRONGTYPE reply (the URL's key holds something else) is the key's fault, a budgeted retry;
// Redis being down is an outage, retried without a dead letter.
func TestRedisFailureClassification(t *testing.T) {
	w := newWorld(t)
	u := "https://x.example/wrongtype"
	if err := w.rdb.Set(context.Background(), w.cache.Key(u), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := w.cache.State(context.Background(), u, cache.Variant{})
	var retry *stream.RetryError
	if !errors.Is(err, cache.ErrRedis) || !errors.As(stream.RedisFailure(err), &retry) {
		t.Fatalf("State of a string key: %v, want an ErrRedis the key caused (a RetryError)", err)
	}
	w.redis.Stop()
	_, err = w.cache.State(context.Background(), u, cache.Variant{})
	var transient *stream.TransientError
	if !errors.Is(err, cache.ErrRedis) || !errors.As(stream.RedisFailure(err), &transient) {
		t.Fatalf("State with Redis down: %v, want an ErrRedis outage (a TransientError)", err)
	}
}

// Per-host slots exist only while a fetch for the host runs or waits: after fetches for many
// hosts the map is empty, and while fetches wait it holds one entry per busy host, each still
// bounded by DRAIN_WARM_HOST_CONCURRENCY.
func TestHostSlotsArePruned(t *testing.T) {
	w := newWorld(t)
	gate := make(chan struct{})
	var mu sync.Mutex
	running, peak := map[string]int{}, map[string]int{}
	c, err := cache.New(w.rdb, cache.Options{Namespace: "ns", Fetcher: cache.FetcherFunc(
		func(ctx context.Context, u string, _ cache.Variant) (*cache.Response, error) {
			h := hostOf(u)
			mu.Lock()
			running[h]++
			peak[h] = max(peak[h], running[h])
			mu.Unlock()
			defer func() { mu.Lock(); running[h]--; mu.Unlock() }()
			<-gate
			return &cache.Response{Status: 200, Header: http.Header{}, Body: []byte(u)}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	wm, err := New(Options{JS: w.js, Names: w.names, Cache: c, HostConcurrency: 2,
		Consumer: config.Consumer{Concurrency: 16}, Log: discardLog(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wm.startFetchers())
	hostsHeld := func() map[string]int {
		wm.mu.Lock()
		defer wm.mu.Unlock()
		out := map[string]int{}
		for h, s := range wm.hosts {
			out[h] = s.refs
		}
		return out
	}

	var wg sync.WaitGroup
	for i := range 8 {
		host := "a.example"
		if i >= 5 {
			host = "b.example"
		}
		wg.Go(func() {
			if out := wm.warm(fmt.Sprintf("http://%s/%d", host, i), 0, nil); out.kind != outStored {
				t.Errorf("warm %s/%d: %+v", host, i, out)
			}
		})
	}
	eventually(t, 10*time.Second, "2 fetches running per host", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running["a.example"] == 2 && running["b.example"] == 2
	})
	if got := hostsHeld(); len(got) != 2 || got["a.example"] != 5 || got["b.example"] != 3 {
		t.Fatalf("host slots while busy: %v, want a.example:5 b.example:3", got)
	}
	close(gate)
	wg.Wait()
	if got := hostsHeld(); len(got) != 0 {
		t.Fatalf("host slots after the fetches: %v, want none", got)
	}
	for i := range 200 {
		wm.warm(fmt.Sprintf("http://h%d.example/x", i), 0, nil)
	}
	if got := hostsHeld(); len(got) != 0 {
		t.Fatalf("%d host entries left after fetches for 200 hosts", len(got))
	}
	mu.Lock()
	defer mu.Unlock()
	if peak["a.example"] != 2 || peak["b.example"] != 2 {
		t.Fatalf("peak fetches per host %v, want 2 (DRAIN_WARM_HOST_CONCURRENCY)", peak)
	}
}

// With the default settings a message failing on the origin is retried for longer than a
// 30 s outage plus one breaker sleep window (the circuit may stay open that long after the
// origin is back) before it is dead-lettered. The backoff is stream.Consume's: Backoff
// doubled per delivery, capped at BackoffMax, one delay after each of the first
// MaxDeliver-1 deliveries.
func TestDefaultsOutlastAThirtySecondOriginOutage(t *testing.T) {
	cfg := config.Default(config.Warmer)
	c := cfg.Consumer
	var budget time.Duration
	d := c.RetryBackoff
	for range c.MaxDeliver - 1 {
		budget += d
		d = min(2*d, c.RetryBackoffMax)
	}
	need := 30*time.Second + cfg.Fetch.Breaker.SleepWindow
	t.Logf("default retry budget before a dead letter: %v (MaxDeliver %d, backoff %v..%v); needed %v",
		budget, c.MaxDeliver, c.RetryBackoff, c.RetryBackoffMax, need)
	if budget < need {
		t.Fatalf("retry budget %v < %v", budget, need)
	}
}

// Requests for a URL arriving while its fetch runs join it: one trailing fetch, started at
// least DRAIN_WARM_COALESCE after the first, covers them all. Once a URL's fetches are over
// nothing of it stays behind (no goroutine, no timer, no flight), however many URLs there were.
func TestFlights(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	gate := make(chan struct{})
	var mu sync.Mutex
	var starts []time.Time
	c, err := cache.New(w.rdb, cache.Options{Namespace: "ns", Fetcher: cache.FetcherFunc(
		func(ctx context.Context, u string, _ cache.Variant) (*cache.Response, error) {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			if strings.HasSuffix(u, "/hot") {
				<-gate
			}
			return &cache.Response{Status: 200, Header: http.Header{}, Body: []byte(u)}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	const coalesce = 100 * time.Millisecond
	wm, err := New(Options{JS: w.js, Names: w.names, Cache: c, Coalesce: coalesce, Log: discardLog(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wm.startFetchers())
	hot := "http://a.example/hot"
	idx, _ := c.Invalidate(ctx, hot)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	wg.Go(func() { errs <- wm.await(ctx, hot, idx[0]) })
	eventually(t, 5*time.Second, "the leading fetch", func() bool { mu.Lock(); defer mu.Unlock(); return len(starts) == 1 })
	for range 5 { // invalidated during the fetch: the leading fetch cannot store
		idx, _ := c.Invalidate(ctx, hot)
		wg.Go(func() { errs <- wm.await(ctx, hot, idx[0]) })
	}
	eventually(t, 5*time.Second, "6 requests in the flight", func() bool {
		wm.mu.Lock()
		defer wm.mu.Unlock()
		return wm.flights[hot] != nil && len(wm.flights[hot].waiters) == 6
	})
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a request failed: %v", err)
		}
	}
	mu.Lock()
	if len(starts) != 2 || starts[1].Sub(starts[0]) < coalesce {
		t.Fatalf("fetch starts %v, want 2, %v apart at least", starts, coalesce)
	}
	mu.Unlock()
	if s, _ := c.State(ctx, hot, cache.Variant{}); s.Stored != 6 || s.Current != 6 {
		t.Fatalf("state %+v, want the entry stored under 6", s)
	}

	goroutines := runtime.NumGoroutine() // the fetchers included
	for i := range 200 {
		if err := wm.await(ctx, fmt.Sprintf("http://b.example/%d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	wm.mu.Lock()
	flights := len(wm.flights)
	wm.mu.Unlock()
	if n := runtime.NumGoroutine(); flights != 0 || n > goroutines+5 {
		t.Fatalf("after 200 URLs: %d flights, %d goroutines (%d before)", flights, n, goroutines)
	}
}
