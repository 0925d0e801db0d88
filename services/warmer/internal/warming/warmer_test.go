package warming

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

func TestWarmsUpdatesAndBustsDeletes(t *testing.T) {
	w := newWorld(t)
	w.startWarmer()

	w.event("/a", cache.WarmCreate)
	w.event("/a", cache.WarmUpdate)
	w.event("/b", cache.WarmCreate)
	eventually(t, 10*time.Second, "/b warm", func() bool { return w.cached("/b") != "" })
	w.event("/b", cache.WarmDelete)
	w.publish(w.api.url("/missing"), cache.WarmUpdate) // origin answers 404
	w.api.mu.Lock()
	w.api.version["/gone"] = 1
	w.api.gone["/gone"] = true
	w.api.mu.Unlock()
	w.publish(w.api.url("/gone"), cache.WarmUpdate) // origin answers 410
	w.quiet(10 * time.Second)

	if got, want := w.cached("/a"), w.api.body("/a"); got != want || !strings.Contains(got, `"v":2`) {
		t.Fatalf("/a cached %q, want %q", got, want)
	}
	for _, p := range []string{"/b", "/missing", "/gone"} {
		if w.storedAnything(p) {
			t.Errorf("%s still has a stored variant", p)
		}
	}
	if n := w.deadLetters(); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

func TestDisallowedHostIsDeadLettered(t *testing.T) {
	w := newWorld(t)
	w.startWarmer()
	evil := strings.Replace(w.api.url("/internal"), "127.0.0.1", "localhost", 1)
	w.publish(evil, cache.WarmCreate)
	eventually(t, 10*time.Second, "a dead letter", func() bool { return w.deadLetters() == 1 })
	w.quiet(5 * time.Second)
	if n := w.api.total.Load(); n != 0 {
		t.Fatalf("the origin saw %d requests for a disallowed host", n)
	}
	dlq, err := w.js.Stream(context.Background(), w.names.Stream(stream.DLQ))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dlq.GetLastMsgForSubject(context.Background(), w.names.Subject(stream.DLQ, "warm"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Header.Get(stream.HeaderError), "not allowed") || !strings.Contains(string(msg.Data), "/internal") {
		t.Fatalf("dead letter: %s %v", msg.Data, msg.Header)
	}
}

// A URL on a link-local address (cloud metadata) is never fetched, even with its host
// allowlisted: the request is dead-lettered at its first delivery, not retried.
func TestLinkLocalAddressIsDeadLettered(t *testing.T) {
	w := newWorld(t, "DRAIN_WARM_ALLOW_HOSTS=169.254.169.254")
	w.startWarmer()
	w.publish("http://169.254.169.254/latest/meta-data/iam/security-credentials/", cache.WarmCreate)
	eventually(t, 10*time.Second, "a dead letter", func() bool { return w.deadLetters() == 1 })
	dlq, err := w.js.Stream(context.Background(), w.names.Stream(stream.DLQ))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dlq.GetLastMsgForSubject(context.Background(), w.names.Subject(stream.DLQ, "warm"))
	if err != nil {
		t.Fatal(err)
	}
	if e := msg.Header.Get(stream.HeaderError); !strings.Contains(e, "link-local") || msg.Header.Get(stream.HeaderDeliveries) != "1" {
		t.Fatalf("dead letter after %s deliveries: %s", msg.Header.Get(stream.HeaderDeliveries), e)
	}
}

// Without DRAIN_WARM_ALLOW_HOSTS the warmer says at start that it fetches any host.
func TestWarnsWithoutAllowlist(t *testing.T) {
	for allow, want := range map[string]bool{"": true, "127.0.0.1": false} {
		w := newWorld(t, "DRAIN_WARM_ALLOW_HOSTS="+allow)
		logs := &draintest.Buffer{}
		w.logs = logs
		w.startWarmer()
		w.quiet(10 * time.Second) // consuming: the start-up is over
		if got := strings.Contains(logs.String(), "DRAIN_WARM_ALLOW_HOSTS is empty"); got != want {
			t.Errorf("allow %q: warned %v, want %v; logs:\n%s", allow, got, want, logs)
		}
	}
}

func TestBadRequestIsDeadLettered(t *testing.T) {
	w := newWorld(t)
	w.startWarmer()
	if _, err := w.js.Publish(context.Background(), w.names.Subject(stream.Warm, ""), []byte(`{"url":"nope"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a dead letter", func() bool { return w.deadLetters() == 1 })
}

// A redelivered request already covered by a stored entry is acknowledged without a fetch. A
// first delivery is not looked up (the filter has just bumped its index, so it is almost
// never covered): the conditional store decides, and a covered one costs a fetch that leaves
// the entry at its index.
func TestCoveredRequestsAreNotFetched(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.api.version["/c"] = 1
	url := w.api.url("/c")
	idx, _ := w.cache.Invalidate(ctx, url)
	// Someone (a reader's Get) already stored the current version at this index.
	rc, _ := cache.New(w.rdb, cache.Options{Namespace: "ns", Fetcher: cache.FetcherFunc(func(ctx context.Context, u string, v cache.Variant) (*cache.Response, error) {
		return &cache.Response{Status: 200, Header: http.Header{}, Body: []byte(w.api.body("/c"))}, nil
	})})
	if _, err := rc.Get(ctx, url, cache.Variant{}); err != nil {
		t.Fatal(err)
	}
	m, _ := cache.WarmMsg(w.names.Subject(stream.Warm, ""), cache.WarmRequest{URL: url, Type: "update", T: 1, Index: idx[0]})
	if _, err := w.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Its first delivery failed: taken from the warmers' consumer and handed back.
	wm, err := New(Options{JS: w.js, Names: w.names, Cache: w.cache, Log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.EnsureConsumer(ctx, w.js, wm.ConsumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		if err := msg.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	_, reg := w.startWarmer()
	w.quiet(10 * time.Second)
	if n := w.api.total.Load(); n != 0 {
		t.Fatalf("origin fetched %d times for a covered redelivered request", n)
	}
	if v := metricValue(t, reg, "drain_warmer_requests_total", "via", "covered"); v != 1 {
		t.Fatalf("covered requests metric %v", v)
	}

	m, _ = cache.WarmMsg(w.names.Subject(stream.Warm, ""), cache.WarmRequest{URL: url, Type: "update", T: 2, Index: idx[0]})
	if _, err := w.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	w.quiet(10 * time.Second)
	if n := w.api.total.Load(); n != 1 {
		t.Fatalf("origin fetched %d times for a covered first delivery, want 1", n)
	}
	if s, err := w.cache.State(ctx, url, cache.Variant{}); err != nil || s.Stored != idx[0] || w.cached("/c") != w.api.body("/c") {
		t.Fatalf("after a covered first delivery: state %+v %v, cached %q", s, err, w.cached("/c"))
	}
}

// 1,000 warm requests for one URL within a second cost few fetches, and the cache ends with
// the origin's final version.
func TestCoalescing(t *testing.T) {
	w := newWorld(t)
	_, reg := w.startWarmer()
	const n = 1000
	start := time.Now()
	for i := range n {
		w.event("/hot", cache.WarmUpdate)
		// Spread the burst over about 0.9 s.
		if ahead := time.Duration(i+1)*900*time.Microsecond - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	took := time.Since(start)
	if took > 1500*time.Millisecond {
		t.Logf("publishing took %v (slow machine)", took)
	}
	w.quiet(20 * time.Second)
	fetches := w.api.fetchesOf("/hot")
	t.Logf("%d requests in %v → %d origin fetches", n, took, fetches)
	if fetches > 10 {
		t.Fatalf("%d origin fetches for %d requests, want ≤ 10", fetches, n)
	}
	if got, want := w.cached("/hot"), w.api.body("/hot"); got != want || !strings.Contains(want, fmt.Sprintf(`"v":%d`, n)) {
		t.Fatalf("cached %q, want %q", got, want)
	}
	if w.deadLetters() != 0 {
		t.Fatal("dead letters")
	}
	// Every request was acknowledged either by a fetch that covered it (most of them coalesced
	// into another request's fetch) or because a stored entry already covered it.
	fetched, covered := metricValue(t, reg, "drain_warmer_requests_total", "via", "fetched"), metricValue(t, reg, "drain_warmer_requests_total", "via", "covered")
	coalesced := metricValue(t, reg, "drain_warmer_coalesced_total")
	if fetched+covered != n || coalesced < fetched-float64(fetches) {
		t.Fatalf("metrics: fetched %v covered %v coalesced %v", fetched, covered, coalesced)
	}
}

// The origin answers 500 for a while; the breaker opens and only its probes reach the origin;
// after recovery every URL is warm and nothing was dead-lettered.
func TestOriginOutageWithBreaker(t *testing.T) {
	w := newWorld(t)
	const urls = 20
	w.api.failing.Store(true)
	_, reg := w.startWarmer(
		"ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT=YES",
		"ROUTEMASTER_CIRCUIT_BREAKER_SLEEP_WINDOW=1",
		"ROUTEMASTER_CIRCUIT_BREAKER_TIME_WINDOW=10",
		"ROUTEMASTER_CIRCUIT_BREAKER_VOLUME_THRESHOLD=5",
		"ROUTEMASTER_CIRCUIT_BREAKER_ERROR_THRESHOLD=50",
		"DRAIN_CONCURRENCY=4",
	)
	for i := range urls {
		w.event(fmt.Sprintf("/o/%d", i), cache.WarmCreate)
	}
	eventually(t, 10*time.Second, "the breaker to open", func() bool {
		return metricValue(t, reg, "drain_apiclient_breaker_state") == 2
	})
	openedAt, before := time.Now(), w.api.total.Load()
	const outage = 4 * time.Second
	time.Sleep(outage) // the outage goes on; the warmer keeps retrying
	during := w.api.total.Load() - before
	t.Logf("origin saw %d requests before the breaker opened, %d during %v open", before, during, outage)
	// One probe per sleep window (1 s) while open, plus one in flight when it opened.
	if limit := int64(outage/time.Second) + 2; during > limit {
		t.Fatalf("origin saw %d requests in %v while the breaker was open, want ≤ %d (its probes)", during, time.Since(openedAt), limit)
	}
	w.api.failing.Store(false)
	w.quiet(60 * time.Second)
	for i := range urls {
		p := fmt.Sprintf("/o/%d", i)
		if got, want := w.cached(p), w.api.body(p); got != want {
			t.Fatalf("%s cached %q, want %q", p, got, want)
		}
	}
	if n := w.deadLetters(); n != 0 {
		t.Fatalf("%d dead letters after a %v outage", n, outage)
	}
	if v := metricValue(t, reg, "drain_warmer_messages_total", "outcome", "retry"); v == 0 {
		t.Fatal("no retries recorded")
	}
}

// Many URLs at once are warmed with at most DRAIN_WARM_HOST_CONCURRENCY fetches per host.
func TestHostConcurrencyLimit(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	var cur, peak int
	w.api.delay.Store(int64(50 * time.Millisecond))
	inner := w.api.srv.Config.Handler
	w.api.srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cur++
		peak = max(peak, cur)
		mu.Unlock()
		inner.ServeHTTP(rw, r)
		mu.Lock()
		cur--
		mu.Unlock()
	})
	w.startWarmer("DRAIN_CONCURRENCY=16", "DRAIN_WARM_HOST_CONCURRENCY=3")
	for i := range 30 {
		w.event(fmt.Sprintf("/h/%d", i), cache.WarmCreate)
	}
	w.quiet(20 * time.Second)
	if peak > 3 || peak < 2 {
		t.Fatalf("peak concurrent fetches on one host %d, want 2..3", peak)
	}
	for i := range 30 {
		p := fmt.Sprintf("/h/%d", i)
		if w.cached(p) != w.api.body(p) {
			t.Fatalf("%s not warm", p)
		}
	}
}

func TestAdminEndpoints(t *testing.T) {
	w := newWorld(t)
	r := w.runWarmer()
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "drain_warmer_inflight_fetches"} {
		res, err := http.Get("http://" + r.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("%s: %d %s", path, res.StatusCode, b)
		}
	}
	r.stop()
}

// A slow origin never takes another origin's fetch slots: with 4 fetches at once and 1 per
// host, requests queued for a slow host wait for that host's slot without holding one of the
// process's, so an instant origin is fetched at once.
func TestSlowHostDoesNotBlockOtherHosts(t *testing.T) {
	w := newWorld(t)
	w.api.delay.Store(int64(700 * time.Millisecond))
	fast := newAPI(t)
	fast.version["/quick"] = 1
	w.startWarmer("DRAIN_CONCURRENCY=4", "DRAIN_WARM_HOST_CONCURRENCY=1")
	for i := range 5 {
		w.event(fmt.Sprintf("/slow/%d", i), cache.WarmCreate)
	}
	time.Sleep(200 * time.Millisecond) // the slow requests are queued first
	start := time.Now()
	w.publish(fast.url("/quick"), cache.WarmCreate)
	eventually(t, 5*time.Second, "the instant origin's resource cached", func() bool {
		r, err := w.cache.Lookup(context.Background(), fast.url("/quick"), cache.Variant{})
		return err == nil && r != nil
	})
	if waited := time.Since(start); waited > 400*time.Millisecond {
		t.Fatalf("a fetch from an instant origin waited %v behind a slow one", waited)
	}
}

// Zero Options take the environment's defaults (DRAIN_CONCURRENCY, DRAIN_WARM_HOST_CONCURRENCY,
// ROUTEMASTER_QUEUE_NAME), not numbers of their own.
func TestNewDefaultsAreTheEnvironments(t *testing.T) {
	w := newWorld(t)
	wm, err := New(Options{JS: w.js, Names: w.names, Cache: w.cache, Log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	def := config.Default(config.Warmer)
	if wm.o.Consumer.Concurrency != def.Consumer.Concurrency ||
		wm.o.HostConcurrency != def.Warm.HostConcurrency || wm.o.QueueName != def.Warm.QueueName {
		t.Errorf("zero Options: concurrency %d, host concurrency %d, queue %q; the environment's defaults are %d, %d, %q",
			wm.o.Consumer.Concurrency, wm.o.HostConcurrency, wm.o.QueueName,
			def.Consumer.Concurrency, def.Warm.HostConcurrency, def.Warm.QueueName)
	}
}
