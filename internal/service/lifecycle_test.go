package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func readyz(t *testing.T, l *Lifecycle) (int, readiness) {
	t.Helper()
	code, body := get(t, "GET", "http://"+l.AdminAddr()+"/readyz")
	var r readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return code, r
}

func eventually(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startLifecycle(t *testing.T, env ...string) *Lifecycle {
	t.Helper()
	l, err := Start(config.Sweeper, config.Default(config.Sweeper, append(slices.Clone(adminOnLoopback), env...)...), discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// The admin server answers from Start on: /healthz 200, /readyz 503 "starting", then "not
// ready" naming the missing needs, then 200 once they are met and the work runs, and
// "stopping" while the work drains after cancellation. Extra routes answer 503 until the work
// runs. /metrics carries drain_build_info.
func TestLifecycleAdminEndpoints(t *testing.T) {
	l := startLifecycle(t)
	base := "http://" + l.AdminAddr()
	if code, body := get(t, "GET", base+"/healthz"); code != 200 || body != `{"status":"ok"}` {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, r := readyz(t, l); code != 503 || r.Status != "starting" {
		t.Errorf("/readyz before Run = %d %+v", code, r)
	}
	if code, body := get(t, "GET", base+"/metrics"); code != 200 || !strings.Contains(body, `drain_build_info{goversion="go1.`) ||
		!strings.Contains(body, `service="sweeper"`) || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d:\n%s", code, body)
	}

	var down atomic.Bool
	down.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, Spec{
			Needs: []Need{
				{Name: "thing", Check: func(context.Context) error {
					if down.Load() {
						return errors.New("thing: connection refused")
					}
					return nil
				}},
				{Name: "other", Check: func(context.Context) error { return nil }},
			},
			Routes: map[string]http.Handler{"POST /sweep": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusAccepted)
			})},
			Work: func(ctx context.Context) error {
				<-ctx.Done()
				<-release
				return nil
			},
		})
	}()
	eventually(t, 5*time.Second, "not ready naming thing", func() bool {
		code, r := readyz(t, l)
		return code == 503 && r.Status == "not ready" && slices.Equal(r.Missing, []string{"thing"}) && strings.Contains(r.Errors["thing"], "refused")
	})
	if code, _ := get(t, "POST", base+"/sweep"); code != 503 {
		t.Errorf("extra route before the work runs = %d, want 503", code)
	}
	down.Store(false)
	select {
	case <-l.Running():
	case <-time.After(5 * time.Second):
		t.Fatal("the work did not start once every need was met")
	}
	if code, r := readyz(t, l); code != 200 || r.Status != "ready" {
		t.Errorf("/readyz running = %d %+v", code, r)
	}
	if code, _ := get(t, "POST", base+"/sweep"); code != 202 {
		t.Errorf("extra route = %d, want 202", code)
	}
	cancel()
	eventually(t, 5*time.Second, "stopping", func() bool {
		code, r := readyz(t, l)
		return code == 503 && r.Status == "stopping"
	})
	if code, _ := get(t, "GET", base+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining = %d", code)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// Cancelled before its needs are met, Run returns nil without starting the work.
func TestLifecycleStopBeforeReady(t *testing.T) {
	l := startLifecycle(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := l.Run(ctx, Spec{
		Needs: []Need{{Name: "never", Check: func(context.Context) error { return errors.New("down") }}},
		Work: func(context.Context) error {
			t.Error("work started")
			return nil
		},
	})
	if err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// Against real servers: with NATS and Redis down /readyz names nats, streams and redis; once
// they are started the streams are declared and /readyz answers 200, without a restart.
func TestLifecycleWaitsForNATSAndRedis(t *testing.T) {
	srv := draintest.StartNATS(t)
	rs := draintest.StartRedis(t)
	srv.Stop()
	rs.Stop()
	cfg := config.Default(config.Sweeper, "DRAIN_ADMIN_ADDR=127.0.0.1:0", "NATS_URL="+srv.URL(),
		"ROUTEMASTER_DRAIN_REDIS="+rs.URL(0, ""), "DRAIN_PREFIX=lifecycle")
	l, err := Start(config.Sweeper, cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	conn := cfg.NATS
	conn.Name, conn.Log = "lifecycle-test", discard()
	nc, js, err := stream.Connect(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rdb := NewRedis(cfg.DrainRedis)
	defer rdb.Close()
	names := stream.Names{Prefix: cfg.Streams.Prefix}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, Spec{
			Needs:   append(NATSNeeds(nc, js, names), RedisNeed("redis", rdb)),
			Prepare: func(ctx context.Context) error { return stream.DeclareUntil(ctx, js, cfg.Streams, discard()) },
			Work:    func(ctx context.Context) error { <-ctx.Done(); return nil },
		})
	}()
	eventually(t, 5*time.Second, "nats, streams and redis missing", func() bool {
		code, r := readyz(t, l)
		return code == 503 && slices.Equal(r.Missing, []string{"nats", "streams", "redis"})
	})
	srv.Start()
	rs.Start()
	select {
	case <-l.Running():
	case <-time.After(20 * time.Second):
		_, r := readyz(t, l)
		t.Fatalf("not running 20 s after NATS and Redis started: %+v", r)
	}
	if code, r := readyz(t, l); code != 200 {
		t.Errorf("/readyz = %d %+v", code, r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// With Linger, Run still reports the shutdown timeout but returns only once the work has
// returned (the sweeper gives its batch back meanwhile); without it, at the timeout.
func TestLifecycleLinger(t *testing.T) {
	for _, linger := range []time.Duration{0, 5 * time.Second} {
		l := startLifecycle(t, "DRAIN_SHUTDOWN_TIMEOUT=100ms")
		ctx, cancel := context.WithCancel(context.Background())
		var finished atomic.Bool
		err := l.Run(ctx, Spec{
			Work: func(ctx context.Context) error {
				cancel()
				<-ctx.Done()
				time.Sleep(400 * time.Millisecond)
				finished.Store(true)
				return nil
			},
			Linger: linger,
		})
		var timeout *ShutdownTimeoutError
		if !errors.As(err, &timeout) {
			t.Errorf("linger %v: Run = %v, want a *ShutdownTimeoutError", linger, err)
		}
		if finished.Load() != (linger > 0) {
			t.Errorf("linger %v: the work had finished when Run returned: %v", linger, finished.Load())
		}
	}
}

// DRAIN_PPROF=true serves the Go profiler on the admin address; by default it is not served.
func TestLifecyclePprof(t *testing.T) {
	off := "http://" + startLifecycle(t).AdminAddr()
	if code, _ := get(t, "GET", off+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without DRAIN_PPROF = %d, want 404", code)
	}
	on := "http://" + startLifecycle(t, "DRAIN_PPROF=true").AdminAddr()
	if code, body := get(t, "GET", on+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d:\n%s", code, body)
	}
	if code, body := get(t, "GET", on+"/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap = %d:\n%.200s", code, body)
	}
	if code, body := get(t, "GET", on+"/debug/pprof/profile?seconds=1"); code != 200 || len(body) == 0 {
		t.Errorf("/debug/pprof/profile = %d, %d bytes", code, len(body))
	}
}
