package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/replication"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// go-redis's URL options apply once the namespace segment is taken off.
func TestRedisURLQueryOptions(t *testing.T) {
	r, err := ParseRedisURL("redis://:s3cr3t@127.0.0.1:6390/2/shop?pool_size=7&read_timeout=250ms&dial_timeout=2&max_retries=5")
	if err != nil {
		t.Fatal(err)
	}
	o := r.Options
	if r.Namespace != "shop" || o.DB != 2 || o.Password != "s3cr3t" || o.PoolSize != 7 ||
		o.ReadTimeout != 250*time.Millisecond || o.DialTimeout != 2*time.Second || o.MaxRetries != 5 {
		t.Fatalf("parsed %+v (namespace %q)", o, r.Namespace)
	}
	c := r.NewClient().(*redis.Client)
	defer c.Close()
	if got := c.Options().PoolSize; got != 7 {
		t.Fatalf("pool_size=7 gave a pool of %d", got)
	}
	plain, err := ParseRedisURL("redis://127.0.0.1:6390/0")
	if err != nil {
		t.Fatal(err)
	}
	pc := plain.NewClient().(*redis.Client)
	defer pc.Close()
	if got := pc.Options().PoolSize; got < MinPoolSize {
		t.Fatalf("no pool_size gave a pool of %d, want at least %d", got, MinPoolSize)
	}
	for _, bad := range []string{
		"redis://127.0.0.1:6390/0/ns?pool_sise=3",
		"redis://127.0.0.1:6390/0/ns?read_timeout=soon",
	} {
		if _, err := ParseRedisURL(bad); err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ParseRedisURL(%q) = %v, want an error", bad, err)
		}
	}
}

// A URL with master_name names Redis Sentinels: the client follows the master they monitor.
func TestRedisSentinel(t *testing.T) {
	master := draintest.StartRedis(t)
	port := draintest.FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster %s 1\nsentinel down-after-milliseconds mymaster 1000\n",
		port, dir, strings.Replace(master.Addr(), ":", " ", 1))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	cfg, err := Load(Filter, []string{fmt.Sprintf("ROUTEMASTER_DRAIN_REDIS=redis://127.0.0.1:%d/0/shop?master_name=mymaster", port)})
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.DrainRedis
	if r.Failover == nil || r.Failover.MasterName != "mymaster" || r.Namespace != "shop" || r.Cluster() {
		t.Fatalf("parsed %+v", r)
	}
	c := r.NewClient()
	defer c.Close()
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for c.Set(ctx, "k", "via-sentinel", 0).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no write through the Sentinel: %v", c.Set(ctx, "k", "via-sentinel", 0).Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := master.Client(t, 0).Get(ctx, "k").Val(); got != "via-sentinel" {
		t.Fatalf("the master holds %q", got)
	}
}

// DRAIN_REDIS_WAIT_REPLICAS reaches every client NewClient builds: with no replica to
// confirm them, writes fail as too few replicas (an outage); with 0, they succeed.
func TestRedisWaitReplicas(t *testing.T) {
	srv := draintest.StartRedis(t)
	ctx := context.Background()
	for _, tc := range []struct {
		replicas string
		fails    bool
	}{{"0", false}, {"1", true}} {
		c, err := Load(Sweeper, []string{"ROUTEMASTER_DRAIN_REDIS=" + srv.URL(0, ""),
			"DRAIN_REDIS_WAIT_REPLICAS=" + tc.replicas, "DRAIN_REDIS_WAIT_TIMEOUT=100ms"})
		if err != nil {
			t.Fatal(err)
		}
		rdb := c.DrainRedis.NewClient()
		err = rdb.Set(ctx, "k", 1, 0).Err()
		_ = rdb.Close()
		if got := errors.Is(err, replication.ErrTooFewReplicas); got != tc.fails {
			t.Fatalf("DRAIN_REDIS_WAIT_REPLICAS=%s: set error %v, want too few replicas %v", tc.replicas, err, tc.fails)
		}
		if tc.fails && !stream.IsRedisOutage(err) {
			t.Fatalf("too few replicas is not an outage: %v", err)
		}
	}
}
