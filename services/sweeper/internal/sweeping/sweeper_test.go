package sweeping_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/sweeper/internal/sweeping"
)

var ctx = context.Background()

const prefix = "t"

var names = stream.Names{Prefix: prefix}

type env struct {
	redis *draintest.Redis
	rdb   *redis.Client
	m     *dirty.Map
	nats  *draintest.NATS
	js    jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{redis: draintest.StartRedis(t), nats: draintest.StartNATS(t)}
	e.rdb = e.redis.Client(t, 0)
	m, err := dirty.New(e.rdb, dirty.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	_, e.js = e.nats.Connect(t)
	if err := stream.Declare(ctx, e.js, stream.StreamOptions{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	return e
}

// bucket is the dirty-map bucket of every URL u returns: most tests pin down what a sweeper
// does with one bucket (a lease holds URLs of one bucket); TestSweepSpreadOverBuckets spreads
// them.
const bucket = 9

var keys = dirty.KeysFor("rm", bucket)

var bucketURLs = func() []string {
	var out []string
	for i := 0; len(out) < 5000; i++ {
		if url := fmt.Sprintf("https://example.com/r/%d?a=1&b=<2>", i); dirty.Bucket(url) == bucket {
			out = append(out, url)
		}
	}
	return out
}()

// u returns the n-th URL (n < 5000) of bucket bucket.
func u(n int) string { return bucketURLs[n] }

func (e *env) markN(t *testing.T, n int) []string {
	t.Helper()
	urls := make([]string, n)
	pipe := e.rdb.Pipeline()
	for i := range n {
		urls[i] = u(i)
		pipe.SAdd(ctx, keys.Items, urls[i])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return urls
}

func (e *env) sweeper(t *testing.T, cfg sweeping.Config) (*sweeping.Sweeper, *prometheus.Registry) {
	t.Helper()
	if cfg.Batch == 0 {
		cfg.Batch = 100
	}
	if cfg.Lease == 0 {
		cfg.Lease = 5 * time.Second
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	if cfg.DeadLetters == "" {
		cfg.DeadLetters = names.Subject(stream.DLQ, "sweep")
	}
	reg := prometheus.NewRegistry()
	var js jetstream.JetStream
	if cfg.Subject != "" || cfg.WebhookURL != "" {
		js = e.js
	}
	s, err := sweeping.New(cfg, e.m, e.rdb, js, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

type swept struct {
	urls []string
	id   string
}

// stored returns every message in the swept stream.
func (e *env) stored(t *testing.T) []swept {
	t.Helper()
	st, err := e.js.Stream(ctx, names.Stream(stream.Swept))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []swept
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var urls []string
		if err := json.Unmarshal(msg.Data, &urls); err != nil {
			t.Fatalf("body %q: %v", msg.Data, err)
		}
		out = append(out, swept{urls, msg.Header.Get("Nats-Msg-Id")})
	}
	return out
}

// handedOnce asserts that every URL in want was handed on exactly once in total.
func handedOnce(t *testing.T, batches []swept, want []string) {
	t.Helper()
	n := map[string]int{}
	for _, b := range batches {
		for _, url := range b.urls {
			n[url]++
		}
	}
	for _, url := range want {
		if n[url] != 1 {
			t.Fatalf("%s handed on %d times", url, n[url])
		}
	}
	if len(n) != len(want) {
		t.Fatalf("%d distinct URLs handed on, want %d", len(n), len(want))
	}
}

func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, ok := draintest.Metric(t, reg, name, labels...)
	if !ok {
		t.Fatalf("metric %s%v not found", name, labels)
	}
	return v
}

func TestSweepHandsEveryURLOnOnce(t *testing.T) {
	e := newEnv(t)
	urls := e.markN(t, 1050)
	s, reg := e.sweeper(t, sweeping.Config{Subject: names.Subject(stream.Swept, "")})
	n, err := s.Pass(ctx)
	if err != nil || n != 1050 {
		t.Fatalf("pass = %d, %v", n, err)
	}
	batches := e.stored(t)
	if len(batches) != 11 {
		t.Fatalf("%d messages, want 11 batches of at most 100", len(batches))
	}
	handedOnce(t, batches, urls)
	for _, b := range batches {
		if !strings.HasPrefix(b.id, "swept-") || !slices.IsSorted(b.urls) {
			t.Fatalf("message id %q, sorted %v", b.id, slices.IsSorted(b.urls))
		}
	}
	if c, _ := e.m.Count(ctx); c != 0 {
		t.Fatalf("%d URLs left in the map", c)
	}
	if keys := e.rdb.Keys(ctx, "*").Val(); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
	if got := metric(t, reg, "drain_sweeper_urls_handed_on_total"); got != 1050 {
		t.Fatalf("handed-on metric %v", got)
	}
	if got := metric(t, reg, "drain_sweeper_sweeps_total"); got != 1 {
		t.Fatalf("sweeps metric %v", got)
	}
	if got := metric(t, reg, "drain_sweeper_dirty_urls"); got != 0 {
		t.Fatalf("size gauge %v", got)
	}
	// Bodies are plain JSON arrays of URLs, & and < not escaped.
	st, _ := e.js.Stream(ctx, names.Stream(stream.Swept))
	raw, _ := st.GetMsg(ctx, 1)
	if !strings.Contains(string(raw.Data), "?a=1&b=<2>") {
		t.Fatalf("body escapes URLs: %.120s", raw.Data)
	}
}

// URLs of every bucket: each message holds URLs of one bucket, at most a batch of them, and
// every URL is handed on once.
func TestSweepSpreadOverBuckets(t *testing.T) {
	e := newEnv(t)
	m, err := dirty.New(e.rdb, dirty.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	var per [dirty.Buckets]int
	for i := range 1050 {
		url := fmt.Sprintf("https://example.com/spread/%d", i)
		urls = append(urls, url)
		per[dirty.Bucket(url)]++
		if _, err := m.Mark(ctx, url); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := e.sweeper(t, sweeping.Config{Subject: names.Subject(stream.Swept, "")})
	if n, err := s.Pass(ctx); err != nil || n != 1050 {
		t.Fatalf("pass = %d, %v", n, err)
	}
	batches := e.stored(t)
	handedOnce(t, batches, urls)
	want := 0
	for _, n := range per {
		want += (n + 99) / 100
	}
	if len(batches) != want {
		t.Fatalf("%d messages, want %d (one per bucket and 100 URLs)", len(batches), want)
	}
	for _, b := range batches {
		for _, url := range b.urls {
			if dirty.Bucket(url) != dirty.Bucket(b.urls[0]) {
				t.Fatalf("message %s mixes buckets", b.id)
			}
		}
	}
}

type hook struct {
	mu        sync.Mutex
	fail      int // answer 500 to this many requests first
	requests  int
	got       map[string][]string // Idempotency-Key -> URLs of 2xx-answered requests
	delivered int                 // 2xx-answered requests
	delay     time.Duration
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	time.Sleep(h.delay)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.requests <= h.fail {
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	}
	var urls []string
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &urls) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if h.got == nil {
		h.got = map[string][]string{}
	}
	h.got[r.Header.Get("Idempotency-Key")] = urls
	h.delivered++
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) batches() []swept {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []swept
	for id, urls := range h.got {
		out = append(out, swept{urls, id})
	}
	return out
}

func TestWebhookFailingThenRecovering(t *testing.T) {
	e := newEnv(t)
	urls := e.markN(t, 120)
	h := &hook{fail: 4}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s, reg := e.sweeper(t, sweeping.Config{Batch: 50, Lease: 600 * time.Millisecond, WebhookURL: srv.URL})

	done := make(chan error, 1)
	go func() { _, err := s.Pass(ctx); done <- err }()
	// While the webhook fails, the lease is renewed (the backoff outlasts the 600ms lease):
	// nobody else can take the failing batch.
	var passErr error
	for finished := false; !finished; {
		select {
		case passErr = <-done:
			finished = true
		default:
			h.mu.Lock()
			failing := h.requests > 0 && h.requests < h.fail
			h.mu.Unlock()
			if failing {
				other, tok, _ := e.m.Lease(ctx, 1000, time.Minute)
				e.m.Release(ctx, tok, other...)
				if len(other) > 70 {
					t.Fatalf("a second sweeper leased %d URLs during the retries", len(other))
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if passErr != nil {
		t.Fatal(passErr)
	}
	handedOnce(t, h.batches(), urls)
	if got := metric(t, reg, "drain_sweeper_handoff_failures_total", "target", "webhook"); got != 4 {
		t.Fatalf("failures metric %v, want 4", got)
	}
	if c, _ := e.m.Count(ctx); c != 0 {
		t.Fatalf("%d left", c)
	}
}

func TestWebhookDownAtShutdownGivesBack(t *testing.T) {
	e := newEnv(t)
	e.markN(t, 30)
	h := &hook{fail: 1 << 30}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s, _ := e.sweeper(t, sweeping.Config{Batch: 50, Lease: time.Minute, WebhookURL: srv.URL, ShutdownGrace: 300 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	for {
		h.mu.Lock()
		n := h.requests
		h.mu.Unlock()
		if n >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	// Given back, not lost and not waiting for the lease: leasable at once.
	if n := e.rdb.SCard(ctx, keys.Items).Val(); n != 30 {
		t.Fatalf("%d URLs back in the map, want 30", n)
	}
	if n := e.rdb.ZCard(ctx, keys.Leases).Val(); n != 0 {
		t.Fatalf("%d URLs still leased", n)
	}
}

func TestPublishAndWebhook(t *testing.T) {
	e := newEnv(t)
	urls := e.markN(t, 10)
	h := &hook{fail: 1}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s, _ := e.sweeper(t, sweeping.Config{Subject: names.Subject(stream.Swept, ""), WebhookURL: srv.URL})
	if n, err := s.Pass(ctx); err != nil || n != 10 {
		t.Fatalf("pass = %d %v", n, err)
	}
	stored := e.stored(t)
	handedOnce(t, stored, urls) // the webhook retry did not publish again
	hooked := h.batches()
	handedOnce(t, hooked, urls)
	if hooked[0].id != stored[0].id {
		t.Fatalf("Idempotency-Key %q differs from Nats-Msg-Id %q", hooked[0].id, stored[0].id)
	}
}

func TestTwoSweepersConcurrently(t *testing.T) {
	e := newEnv(t)
	urls := e.markN(t, 5000)
	subject := names.Subject(stream.Swept, "")
	a, _ := e.sweeper(t, sweeping.Config{Subject: subject, Batch: 50})
	b, _ := e.sweeper(t, sweeping.Config{Subject: subject, Batch: 50})
	var wg sync.WaitGroup
	var na, nb int
	wg.Go(func() { na, _ = a.Pass(ctx) })
	wg.Go(func() { nb, _ = b.Pass(ctx) })
	wg.Wait()
	if na+nb != 5000 || na == 0 || nb == 0 {
		t.Fatalf("handed on %d + %d", na, nb)
	}
	handedOnce(t, e.stored(t), urls)
}

// A sweeper that published a batch and died before completing it: the next sweeper takes the
// whole batch over once the lease expires and re-publishes it under the same Nats-Msg-Id, so
// JetStream stores it once.
func TestDeadHoldersBatchIsStoredOnce(t *testing.T) {
	e := newEnv(t)
	urls := e.markN(t, 40)
	subject := names.Subject(stream.Swept, "")
	leased, tok, err := e.m.Lease(ctx, 100, 300*time.Millisecond)
	if err != nil || len(leased) != 40 {
		t.Fatal(leased, err)
	}
	body := sweeping.Body(leased)
	if _, err := e.js.Publish(ctx, subject, body, jetstream.WithMsgID(sweeping.MsgID(subject, tok, body))); err != nil {
		t.Fatal(err)
	}
	// ...killed here. A live sweeper comes along.
	s, reg := e.sweeper(t, sweeping.Config{Subject: subject})
	runCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go s.Run(runCtx)
	deadline := time.Now().Add(10 * time.Second)
	for c, _ := e.m.Count(ctx); c != 0; c, _ = e.m.Count(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("%d URLs never handed on", c)
		}
		time.Sleep(20 * time.Millisecond)
	}
	handedOnce(t, e.stored(t), urls)
	if got := metric(t, reg, "drain_sweeper_recovered_batches_total"); got != 1 {
		t.Fatalf("recovered %v batches", got)
	}
	if got := metric(t, reg, "drain_sweeper_duplicate_publishes_total"); got != 1 {
		t.Fatalf("duplicates %v", got)
	}
}

func TestSweepEndpoint(t *testing.T) {
	e := newEnv(t)
	s, reg := e.sweeper(t, sweeping.Config{Subject: names.Subject(stream.Swept, "")})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(runCtx); close(done) }()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	// Let the start-up sweep (empty map) finish, then dirty some URLs and ask for a sweep.
	for metric(t, reg, "drain_sweeper_sweep_duration_seconds") < 1 {
		time.Sleep(10 * time.Millisecond)
	}
	urls := e.markN(t, 7)
	resp, err := http.Post(srv.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["handed_on"] != 7.0 {
		t.Fatalf("POST /sweep: %d %v", resp.StatusCode, body)
	}
	handedOnce(t, e.stored(t), urls)
	stop()
	<-done
	resp, err = http.Post(srv.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after stop: %d", resp.StatusCode)
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []sweeping.Config{
		{Batch: 0, Lease: time.Second, Interval: time.Second, WebhookURL: "http://x"},
		{Batch: 1, Lease: time.Millisecond, Interval: time.Second, WebhookURL: "http://x"},
		{Batch: 1, Lease: time.Second, Interval: time.Second},
		{Batch: 1, Lease: time.Second, Interval: time.Second, Subject: "x"},
		{Batch: 1, Lease: time.Second, Interval: time.Second, WebhookURL: "http://x", DeadLetters: "t.dlq.sweep"}, // no JetStream for its dead letters
	} {
		if _, err := sweeping.New(cfg, nil, nil, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)); err == nil {
			t.Fatalf("%+v accepted", cfg)
		}
	}
}

// Redis stops right after the webhook took a batch and is back 3 s later: the sweeper waits
// out the outage to complete the batch (stream.IsRedisOutage), so the pass succeeds, the map
// is empty and the webhook is not called again when the lease would have expired.
func TestRedisOutageAfterHandOffIsWaitedOut(t *testing.T) {
	e := newEnv(t)
	e.redis = draintest.StartRedis(t, draintest.RedisOptions{AOF: true})
	// A client that fails at once while Redis is down, as one with a short dial timeout would.
	e.rdb = redis.NewClient(&redis.Options{Addr: e.redis.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = e.rdb.Close() })
	m, err := dirty.New(e.rdb, dirty.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	urls := e.markN(t, 3)
	var mu sync.Mutex
	calls := 0
	restarted := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			time.Sleep(1100 * time.Millisecond) // the lease reaches the AOF (fsync every second)
			e.redis.Stop()
			go func() {
				defer close(restarted)
				time.Sleep(3 * time.Second)
				e.redis.Start()
			}()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	s, _ := e.sweeper(t, sweeping.Config{Batch: 10, Lease: 10 * time.Second, WebhookURL: srv.URL})
	n, err := s.Pass(ctx)
	<-restarted
	if err != nil || n != len(urls) {
		t.Fatalf("pass across the Redis outage: %d handed on, %v", n, err)
	}
	if c, err := e.m.Count(ctx); err != nil || c != 0 {
		t.Fatalf("%d URLs left in the map (%v)", c, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Fatalf("webhook called %d times, want 1", calls)
	}
}

// On a Redis Cluster of 3 masters the dirty map spreads over all of them and a sweeper hands
// every URL on exactly once.
func TestSweepOnRedisCluster(t *testing.T) {
	e := newEnv(t)
	cl := draintest.StartRedisCluster(t, 3, 0)
	rdb := cl.Client(t)
	m, err := dirty.New(rdb, dirty.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	var urls []string
	for i := range 3000 {
		url := fmt.Sprintf("https://example.com/cluster/%d", i)
		urls = append(urls, url)
		if _, err := e.m.Mark(ctx, url); err != nil {
			t.Fatal(err)
		}
	}
	per, err := draintest.MasterKeys(ctx, rdb)
	if err != nil || len(per) != 3 {
		t.Fatalf("keys per master: %v, %v", per, err)
	}
	for addr, n := range per {
		if n < 3 {
			t.Fatalf("master %s holds %d dirty sets: %v", addr, n, per)
		}
	}
	s, _ := e.sweeper(t, sweeping.Config{Subject: names.Subject(stream.Swept, "")})
	if n, err := s.Pass(ctx); err != nil || n != 3000 {
		t.Fatalf("pass = %d, %v", n, err)
	}
	handedOnce(t, e.stored(t), urls)
	if c, err := e.m.Count(ctx); err != nil || c != 0 {
		t.Fatalf("%d left, %v", c, err)
	}
}

// refusingHook is a webhook that refuses (422) every batch holding poison and accepts the
// others, remembering what it accepted and when it refused.
type refusingHook struct {
	mu       sync.Mutex
	poison   string
	accepted map[string]int
	refusals []time.Time // refusals of poison alone
	posts    int
}

// A webhook that refuses one URL of a batch: the batch is split until that URL is alone,
// every other URL is handed on (once) in the same pass, and the refused URL is offered again
// with a growing backoff until DRAIN_MAX_DELIVER refusals send it to <prefix>.dlq.sweep and
// out of the map. The sweep never waits for it.
func TestWebhookRefusingOneURL(t *testing.T) {
	e := newEnv(t)
	urls := e.markN(t, 300)
	poison := u(7)
	h := &refusingHook{poison: poison, accepted: map[string]int{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s, reg := e.sweeper(t, sweeping.Config{Batch: 100, WebhookURL: srv.URL, MaxRefusals: 3,
		RefusalBackoff: 200 * time.Millisecond, RefusalBackoffMax: 400 * time.Millisecond})

	start := time.Now()
	n, err := s.Pass(ctx)
	if err != nil || n != 299 {
		t.Fatalf("first pass handed on %d, %v; want the 299 URLs the webhook takes", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the first pass took %v: it waited for the refused URL", d)
	}
	if c, _ := e.m.Count(ctx); c != 1 {
		t.Fatalf("%d URLs left after the first pass, want the refused one", c)
	}
	h.mu.Lock()
	t.Logf("first pass: %d POSTs for 3 batches of 100 with one refused URL", h.posts)
	h.mu.Unlock()

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for c, _ := e.m.Count(ctx); c != 0; c, _ = e.m.Count(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("the refused URL never left the map")
		}
		time.Sleep(20 * time.Millisecond)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	var want []string
	for _, url := range urls {
		if url != poison {
			want = append(want, url)
			if h.accepted[url] != 1 {
				t.Fatalf("%s accepted %d times", url, h.accepted[url])
			}
		}
	}
	if len(h.accepted) != len(want) {
		t.Fatalf("%d URLs accepted, want %d", len(h.accepted), len(want))
	}
	if len(h.refusals) != 3 {
		t.Fatalf("the URL was refused alone %d times, want 3 (DRAIN_MAX_DELIVER)", len(h.refusals))
	}
	if gap := h.refusals[2].Sub(h.refusals[1]); gap < 400*time.Millisecond {
		t.Errorf("second backoff %v, want at least 400ms (200ms doubled)", gap)
	}
	if gap := h.refusals[1].Sub(h.refusals[0]); gap < 200*time.Millisecond {
		t.Errorf("first backoff %v, want at least 200ms", gap)
	}

	dlq, err := stream.OpenDeadLetters(ctx, e.js, names)
	if err != nil {
		t.Fatal(err)
	}
	letters, err := dlq.List(ctx, stream.Selection{Stage: "sweep"})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 {
		t.Fatalf("%d sweep dead letters, want 1", len(letters))
	}
	var body []string
	if l := letters[0]; json.Unmarshal(l.Data, &body) != nil || len(body) != 1 || body[0] != poison ||
		l.Deliveries != 3 || !strings.Contains(l.Error, "422") || l.Subject != names.Subject(stream.DLQ, "sweep") {
		t.Fatalf("dead letter %s %+v", l.Data, l)
	}
	if n := e.rdb.HLen(ctx, sweeping.RefusalsKey("rm")).Val(); n != 0 {
		t.Errorf("%d refusal counts left", n)
	}
	if got := metric(t, reg, "drain_sweeper_webhook_refusals_total"); got != 3 {
		t.Errorf("refusals metric %v", got)
	}
	if got := metric(t, reg, "drain_sweeper_dead_letters_total"); got != 1 {
		t.Errorf("dead letters metric %v", got)
	}
	if got := metric(t, reg, "drain_sweeper_recovered_batches_total"); got != 0 {
		t.Errorf("recovered batches %v: refused URLs coming back are no crash recovery", got)
	}
}

func TestRefusal(t *testing.T) {
	for code, want := range map[int]bool{400: true, 409: true, 413: true, 422: true,
		401: false, 403: false, 404: false, 405: false, 407: false, 408: false, 429: false, 500: false, 503: false, 302: false} {
		if got := sweeping.Refusal(fmt.Errorf("post: %w", &sweeping.StatusError{Code: code})); got != want {
			t.Errorf("Refusal(%d) = %v, want %v", code, got, want)
		}
	}
	if sweeping.Refusal(io.EOF) {
		t.Error("a transport error is a refusal")
	}
}
func (h *refusingHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var urls []string
	if err := json.NewDecoder(r.Body).Decode(&urls); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.posts++
	if slices.Contains(urls, h.poison) {
		if len(urls) == 1 {
			h.refusals = append(h.refusals, time.Now())
		}
		http.Error(w, `{"error":"cannot take `+h.poison+`"}`, http.StatusUnprocessableEntity)
		return
	}
	for _, u := range urls {
		h.accepted[u]++
	}
	w.WriteHeader(http.StatusNoContent)
}

// TestRedisOutageIsProbedEverySecond: a sweeper whose pass failed because Redis was down
// tries again within about a second, not at its next interval, so it resumes soon after a
// failover.
func TestRedisOutageIsProbedEverySecond(t *testing.T) {
	e := newEnv(t)
	e.rdb = redis.NewClient(&redis.Options{Addr: e.redis.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = e.rdb.Close() })
	m, err := dirty.New(e.rdb, dirty.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	e.redis.Stop()
	s, _ := e.sweeper(t, sweeping.Config{Subject: names.Subject(stream.Swept, "")})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(1500 * time.Millisecond) // the first pass failed
	e.redis.Start()
	urls := e.markN(t, 5)
	back := time.Now()
	draintest.Eventually(t, 10*time.Second, "the URLs marked after Redis came back are swept", func() bool {
		return len(e.stored(t)) > 0
	})
	if d := time.Since(back); d > 2500*time.Millisecond {
		t.Fatalf("swept %v after Redis came back, want within about a second", d)
	}
	handedOnce(t, e.stored(t), urls)
}
