package sweeping_test

import (
	"math/rand/v2"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

func TestMain(m *testing.M) { draintest.Main(m) }

// The sweeper binary is SIGKILLed mid-sweep six times and restarted; a slow webhook after the
// publish keeps most kills between the publish and the completion, the window where a naive
// sweeper would hand a batch on twice. Every URL is stored in JetStream exactly once, and the
// webhook receives every URL under one Idempotency-Key.
func TestSIGKILLMidSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the sweeper binary")
	}
	e := newEnv(t)
	bin := draintest.BuildBinary(t, "../..")
	urls := e.markN(t, 5000)
	h := &hook{delay: 2 * time.Millisecond}
	srv := httptestServer(t, h)
	env := []string{
		"NATS_URL=" + e.nats.URL(),
		"ROUTEMASTER_DRAIN_REDIS=" + e.redis.URL(0, ""),
		"DRAIN_PREFIX=" + prefix,
		"DRAIN_SWEEP_BATCH=25",
		"DRAIN_SWEEP_LEASE=1s",
		"DRAIN_SWEEP_INTERVAL=1h",
		"DRAIN_ADMIN_ADDR=127.0.0.1:0",
		"DRAIN_SWEEP_WEBHOOK_URL=" + srv,
	}
	start := func() (*exec.Cmd, *draintest.Buffer) {
		cmd := exec.Command(bin)
		cmd.Env = env
		logs := &draintest.Buffer{}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, logs
	}
	delivered := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.delivered
	}
	recovered := 0
	for kill := 0; kill < 6; kill++ {
		before := delivered()
		cmd, logs := start()
		deadline := time.Now().Add(20 * time.Second)
		for delivered() == before {
			if time.Now().After(deadline) {
				t.Fatalf("sweeper #%d handed nothing on; logs:\n%s", kill+1, logs)
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		recovered += strings.Count(logs.String(), "took over an expired batch")
	}
	cmd, logs := start()
	deadline := time.Now().Add(60 * time.Second)
	for c, _ := e.m.Count(ctx); c != 0; c, _ = e.m.Count(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("%d URLs never handed on; logs:\n%s", c, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("SIGTERM exit: %v\n%s", err, logs)
	}
	recovered += strings.Count(logs.String(), "took over an expired batch")

	stored := e.stored(t)
	handedOnce(t, stored, urls)
	handedOnce(t, h.batches(), urls)
	t.Logf("6 kills: %d batches taken over from a dead sweeper; %d messages stored for 5000 URLs (batches of 25); "+
		"webhook: %d deliveries, %d distinct Idempotency-Keys", recovered, len(stored), delivered(), len(h.batches()))
	if recovered == 0 {
		t.Log("no kill landed inside a batch this run")
	}
}

func httptestServer(t *testing.T, h *hook) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
