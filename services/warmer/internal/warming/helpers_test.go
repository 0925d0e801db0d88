package warming

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// api is a test origin: each path has a version (absent means 404); a fetch answers
// {"path":…,"v":N}. It can be slowed down or made to fail with 500.
type api struct {
	srv     *httptest.Server
	mu      sync.Mutex
	version map[string]int
	gone    map[string]bool
	fetches map[string]int
	total   atomic.Int64
	delay   atomic.Int64 // ns
	failing atomic.Bool
}

func newAPI(t *testing.T) *api {
	a := &api{version: map[string]int{}, gone: map[string]bool{}, fetches: map[string]int{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.total.Add(1)
		a.mu.Lock()
		a.fetches[r.URL.Path]++
		a.mu.Unlock()
		if d := time.Duration(a.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if a.failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		a.mu.Lock()
		v, ok := a.version[r.URL.Path]
		gone := a.gone[r.URL.Path]
		a.mu.Unlock()
		switch {
		case gone:
			w.WriteHeader(http.StatusGone)
		case !ok:
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"path":%q,"v":%d}`, r.URL.Path, v)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *api) url(path string) string { return a.srv.URL + path }

// body is what the origin answers now for path ("" when it has no such resource).
func (a *api) body(path string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.version[path]
	if !ok || a.gone[path] {
		return ""
	}
	return fmt.Sprintf(`{"path":%q,"v":%d}`, path, v)
}

func (a *api) fetchesOf(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fetches[path]
}

// world is a private NATS, Redis and origin, plus what the filter would do.
type world struct {
	t     *testing.T
	nats  *draintest.NATS
	redis *draintest.Redis
	rdb   *redis.Client
	js    jetstream.JetStream
	api   *api
	cache *cache.Cache
	names stream.Names
	env   []string
	logs  io.Writer // when set, the warmers started log warnings here
}

func newWorld(t *testing.T, env ...string) *world {
	t.Helper()
	w := &world{t: t, nats: draintest.StartNATS(t), redis: draintest.StartRedis(t), api: newAPI(t), names: stream.Names{Prefix: "wt"}}
	w.rdb = w.redis.Client(t, 0)
	_, w.js = w.nats.Connect(t)
	w.env = append([]string{
		"NATS_URL=" + w.nats.URL(),
		"ROUTEMASTER_DRAIN_REDIS=" + w.redis.URL(0, "ns"),
		"DRAIN_PREFIX=wt",
		"DRAIN_ADMIN_ADDR=127.0.0.1:0",
		"DRAIN_WARM_ALLOW_HOSTS=127.0.0.1",
		"DRAIN_RETRY_BACKOFF=100ms",
		"DRAIN_RETRY_BACKOFF_MAX=1s",
		"DRAIN_SHUTDOWN_TIMEOUT=5s",
		"DRAIN_LOG_LEVEL=warn",
	}, env...)
	cfg := config.Default(config.Warmer, w.env...)
	if err := stream.Declare(context.Background(), w.js, cfg.Streams); err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(w.rdb, cache.Options{Namespace: "ns", Expiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w.cache = c
	return w
}

// event does what the origin and the filter do for one event: change the resource, bump the
// URL's invalidation index and publish a warm request with the new index.
func (w *world) event(path, typ string) {
	w.t.Helper()
	w.api.mu.Lock()
	if typ == cache.WarmDelete {
		delete(w.api.version, path)
	} else {
		w.api.version[path]++
	}
	w.api.mu.Unlock()
	w.publish(w.api.url(path), typ)
}

func (w *world) publish(url, typ string) {
	w.t.Helper()
	ctx := context.Background()
	idx, err := w.cache.Invalidate(ctx, url)
	if err != nil {
		w.t.Fatal(err)
	}
	m, err := cache.WarmMsg(w.names.Subject(stream.Warm, ""), cache.WarmRequest{URL: url, Type: typ, T: time.Now().UnixMilli(), Index: idx[0]})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.js.PublishMsg(ctx, m); err != nil {
		w.t.Fatal(err)
	}
}

// startWarmer runs the warmer service in this process until the test ends or stop is called.
func (w *world) startWarmer(env ...string) (stop func(), reg *prometheus.Registry) {
	w.t.Helper()
	r := w.runWarmer(env...)
	return r.stop, r.Registry
}

// runningWarmer is a warmer service started by runWarmer.
type runningWarmer struct {
	*service.Lifecycle
	stop func() // cancels the warmer and waits for it, failing the test when Main failed
}

// runWarmer runs Main in a lifecycle of its own in this process and returns once the warmer
// consumes; cleanup stops it.
func (w *world) runWarmer(env ...string) *runningWarmer {
	w.t.Helper()
	cfg := config.Default(config.Warmer, append(append([]string{}, w.env...), env...)...)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch {
	case w.logs != nil:
		log = slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	case testing.Verbose():
		log = slog.New(slog.NewTextHandler(testWriter{w.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	l, err := service.Start(config.Warmer, cfg, log)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	var runErr error
	go func() { runErr = Main(ctx, l); close(exited) }()
	var once sync.Once
	r := &runningWarmer{Lifecycle: l, stop: func() {
		once.Do(func() {
			cancel()
			<-exited
			l.Close()
			if runErr != nil {
				w.t.Errorf("warmer: %v", runErr)
			}
		})
	}}
	w.t.Cleanup(r.stop)
	select {
	case <-l.Running():
	case <-exited:
		w.t.Fatalf("warmer did not start: %v", runErr)
	case <-time.After(10 * time.Second):
		w.t.Fatal("warmer did not start in 10s")
	}
	return r
}

type testWriter struct{ t *testing.T }

func (tw testWriter) Write(p []byte) (int, error) {
	tw.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// quiet waits until the warm consumer has nothing pending or unacknowledged.
func (w *world) quiet(timeout time.Duration) {
	w.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		c, err := w.js.Consumer(ctx, w.names.Stream(stream.Warm), w.names.Durable("warm_routemaster"))
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
			if time.Now().After(deadline) {
				w.t.Fatalf("warm consumer not quiet after %v: pending %d, unacked %d (err %v)", timeout, info.NumPending, info.NumAckPending, err)
			}
		} else if time.Now().After(deadline) {
			w.t.Fatalf("no warm consumer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deadLetters is the number of messages in the dead-letter stream.
func (w *world) deadLetters() uint64 {
	w.t.Helper()
	s, err := w.js.Stream(context.Background(), w.names.Stream(stream.DLQ))
	if err != nil {
		w.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return info.State.Msgs
}

// cached is the fresh cached body of path, "" when none.
func (w *world) cached(path string) string {
	w.t.Helper()
	r, err := w.cache.Lookup(context.Background(), w.api.url(path), cache.Variant{})
	if err != nil {
		w.t.Fatal(err)
	}
	if r == nil {
		return ""
	}
	return string(r.Body)
}

// storedAnything reports whether any variant of path is stored (fresh or not).
func (w *world) storedAnything(path string) bool {
	w.t.Helper()
	h, err := w.rdb.HGetAll(context.Background(), w.cache.Key(w.api.url(path))).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	for k := range h {
		if k != cache.FieldCurrentIndex {
			return true
		}
	}
	return false
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// metricValue sums the series of a metric with the given label pairs (all series when none).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, _ := draintest.Metric(t, reg, name, labels...)
	return v
}
