package chaos

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/e2e/devstack/stack"
)

// TestChaosShort is the small chaos run `make test` includes: 5,000 events over 300 URLs
// through two processes of each service, with SIGKILLs every second or so and one restart
// each of NATS and Redis.
func TestChaosShort(t *testing.T) {
	runChaos(t, Options{
		Events: 5000, URLs: 300, Rate: 500, InFlight: 8, KillEvery: time.Second,
	})
}

// TestChaosClusterShort is the short cluster chaos run `make test` includes: 4,000 events over
// 200 URLs through two processes of each service on a 3-node NATS cluster with R3 streams and
// a Redis Cluster of 3 masters with a replica each (DRAIN_REDIS_WAIT_REPLICAS=1), with
// SIGKILLs of services, of the events stream's leader and another NATS node, and of two
// Redis masters.
func TestChaosClusterShort(t *testing.T) {
	sum := runChaos(t, Options{
		Events: 4000, URLs: 200, Rate: 200, InFlight: 8, KillEvery: 1500 * time.Millisecond, Cluster: true,
	})
	if sum.NATS < 2 || sum.Redis < 2 {
		t.Errorf("faults: %d NATS, %d Redis, want 2 of each: %v", sum.NATS, sum.Redis, sum.Faults)
	}
}

// TestMappingDrainUnderKills is issue 3's workload: the Mapping drain (ingest, two filters,
// two sweepers, no cache) takes 10,000 events over 500 URLs with shuffled timestamps in
// concurrent batches while filters and sweepers are SIGKILLed and restarted at random moments,
// at least five times each. Final filter state = newest t per URL, every URL with a fresh
// non-noop event handed on, and no URL handed on more often than it was dirtied.
func TestMappingDrainUnderKills(t *testing.T) {
	sum := runChaos(t, Options{
		Events: 10000, URLs: 500, Rate: 350, InFlight: 8, KillEvery: 800 * time.Millisecond,
		CacheMode: "off", KillOnly: []string{"filter", "sweeper"},
	})
	if sum.Kills["filter"] < 5 || sum.Kills["sweeper"] < 5 {
		t.Errorf("SIGKILLs = %v, want at least 5 of the filters and 5 of the sweepers", sum.Kills)
	}
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// runChaos builds the services once per test binary, runs a chaos plan with two replicas of
// each service and fails the test when a check fails.
func runChaos(t *testing.T, o Options) *Summary {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	root, _ := filepath.Abs("../..")
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "drain-chaos-bin-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		buildErr = stack.Build(ctx, root, binDir, testWriter{t}, stack.Binaries...)
	})
	if buildErr != nil {
		t.Fatalf("build the services: %v", buildErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	o.Bin, o.Work, o.Seed = binDir, t.TempDir(), uint64(time.Now().UnixNano())
	o.Replicas, o.OriginLatency, o.Timeout, o.Log = 2, time.Millisecond, 3*time.Minute, testWriter{t}
	sum, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("chaos run: %v", err)
	}
	t.Log("\n" + sum.String())
	if !sum.Report.OK() {
		for _, f := range []string{"ingest-0", "filter-0", "warmer-0", "sweeper-0"} {
			if b, err := os.ReadFile(filepath.Join(o.Work, f+".log")); err == nil && len(b) > 0 {
				t.Logf("%s log (tail):\n%s", f, tail(b, 2000))
			}
		}
		t.Fatalf("chaos checks failed (seed %d)", o.Seed)
	}
	return sum
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
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
