package chaos

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/e2e/devstack/stack"
)

// TestChaosShort is the small chaos run `make test` includes: 5,000 events over 300 URLs
// through two processes of each service, with SIGKILLs every second or so and one restart
// each of NATS and Redis.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	root, _ := filepath.Abs("../..")
	for _, s := range stack.Binaries {
		if _, err := os.Stat(filepath.Join(root, "services", s, "main.go")); err != nil {
			t.Skipf("services/%s is not there yet", s)
		}
	}
	bin := t.TempDir()
	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer bcancel()
	if err := stack.Build(bctx, root, bin, testWriter{t}, stack.Binaries...); err != nil {
		t.Fatalf("build the services: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	work := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	sum, err := Run(ctx, Options{
		Bin: bin, Work: work, Events: 5000, URLs: 300, Seed: seed,
		Rate: 1000, InFlight: 8, Timeout: 2 * time.Minute, KillEvery: time.Second,
		Replicas: 2, OriginLatency: time.Millisecond, Log: testWriter{t},
	})
	if err != nil {
		t.Fatalf("chaos run: %v", err)
	}
	t.Log("\n" + sum.String())
	if !sum.Report.OK() {
		for _, f := range []string{"ingest-0", "filter-0", "warmer-0", "sweeper-0"} {
			if b, err := os.ReadFile(filepath.Join(work, f+".log")); err == nil && len(b) > 0 {
				t.Logf("%s log (tail):\n%s", f, tail(b, 2000))
			}
		}
		t.Fatalf("chaos checks failed (seed %d)", seed)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
