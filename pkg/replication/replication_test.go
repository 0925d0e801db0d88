package replication_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/replication"
)

func TestMain(m *testing.M) { draintest.Main(m) }

// startPair starts a master and a replica of it, and returns them once the replica synced.
func startPair(t testing.TB) (master, replica *draintest.Redis) {
	t.Helper()
	master = draintest.StartRedis(t, draintest.RedisOptions{Args: []string{"--repl-diskless-sync-delay", "0"}})
	_, port, _ := net.SplitHostPort(master.Addr())
	replica = draintest.StartRedis(t, draintest.RedisOptions{Args: []string{"--replicaof", "127.0.0.1", port}})
	rc, mc := replica.Client(t, 0), master.Client(t, 0)
	// Synced means what the tests rely on: the replica's link is up and it acknowledges a WAIT
	// (the master can count it online before it answers one, the replica's view can come first).
	ctx := context.Background()
	draintest.Eventually(t, 10*time.Second, "replica synced and answering WAIT", func() bool {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "master_link_status:up") || mc.Set(ctx, "startPair:probe", 1, 0).Err() != nil {
			return false
		}
		n, err := mc.Do(ctx, "WAIT", 1, 200).Int()
		return err == nil && n >= 1
	})
	if err := mc.Del(ctx, "startPair:probe").Err(); err != nil {
		t.Fatal(err)
	}
	return master, replica
}

func TestWaitConfirmsEveryWrite(t *testing.T) {
	master, replica := startPair(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := replication.Wait(rdb, replication.Options{Replicas: 1, Timeout: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rc := replica.Client(t, 0)

	// A confirmed write is on the replica when the command returns.
	for i := range 50 {
		k := "k" + strconv.Itoa(i)
		if err := rdb.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
		if got, err := rc.Get(ctx, k).Int(); err != nil || got != i {
			t.Fatalf("replica has %s = %d (%v) right after the write returned, want %d", k, got, err, i)
		}
	}
	// Pipelines and scripts (a library's writes) are confirmed too.
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, "set", "a")
		p.Get(ctx, "k1")
		return nil
	}); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	f, err := reorder.New(rdb, reorder.Options{Namespace: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Run(ctx, 1, events(), true); err != nil {
		t.Fatalf("reorder: %v", err)
	}
	if n, _ := rc.SCard(ctx, "set").Result(); n != 1 {
		t.Fatalf("replica set has %d members, want 1", n)
	}
	// The other stages' writes: the cache's invalidation (a pipeline) and the dirty map.
	ch, err := cache.New(rdb, cache.Options{Namespace: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Invalidate(ctx, "https://example.com/widgets/1", "https://example.com/widgets/2"); err != nil {
		t.Fatalf("cache invalidate: %v", err)
	}
	dm, err := dirty.New(rdb, dirty.Options{Namespace: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dm.Mark(ctx, "https://example.com/widgets/1"); err != nil {
		t.Fatalf("dirty mark: %v", err)
	}
	urls, tok, err := dm.Lease(ctx, 10, time.Minute)
	if err != nil || len(urls) != 1 {
		t.Fatalf("dirty lease: %v %v", urls, err)
	}
	if _, err := dm.Complete(ctx, tok, urls...); err != nil {
		t.Fatalf("dirty complete: %v", err)
	}

	// Without the replica, writes fail as too few replicas; reads still work.
	replica.Stop()
	err = rdb.Set(ctx, "lost", 1, 0).Err()
	if !errors.Is(err, replication.ErrTooFewReplicas) {
		t.Fatalf("set without a replica: %v, want ErrTooFewReplicas", err)
	}
	var we *replication.Error
	if !errors.As(err, &we) || we.Want != 1 || we.Got != 0 || we.Addr != master.Addr() {
		t.Fatalf("error %#v, want 0 of 1 replicas of %s", we, master.Addr())
	}
	if _, err := f.Run(ctx, 2, events(), true); !errors.Is(err, replication.ErrTooFewReplicas) {
		t.Fatalf("reorder without a replica: %v, want ErrTooFewReplicas", err)
	}
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, "set", "b")
		return nil
	}); !errors.Is(err, replication.ErrTooFewReplicas) {
		t.Fatalf("pipeline without a replica: %v, want ErrTooFewReplicas", err)
	}
	if err := rdb.Get(ctx, "k1").Err(); err != nil {
		t.Fatalf("read without a replica: %v", err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestWaitRefusesTransactions(t *testing.T) {
	master, _ := startPair(t)
	rdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := replication.Wait(rdb, replication.Options{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "n")
		return nil
	})
	if err == nil {
		t.Fatal("a transaction was not refused")
	}
	if n, _ := rdb.Get(ctx, "n").Int(); n != 0 {
		t.Fatalf("refused transaction wrote n = %d", n)
	}
}

func TestWaitZeroInstallsNothing(t *testing.T) {
	master := draintest.StartRedis(t) // no replica: every WAIT 1 would fail
	rdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := replication.Wait(rdb, replication.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(context.Background(), "k", 1, 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}
	if err := replication.Wait(rdb, replication.Options{Replicas: -1}); err == nil {
		t.Fatal("negative replicas accepted")
	}
}

// TestClusterWaitAndFailover writes through a Redis Cluster client with Wait and
// ReloadOnError, kills a master, and checks that every write confirmed before the kill is
// still there after its replica took over, and that writes succeed again within 15 s of the
// promotion.
func TestClusterWaitAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 6-node Redis Cluster")
	}
	rc := draintest.StartRedisFailoverCluster(t, 3, 1, time.Second)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs(), MaxRedirects: 8})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := replication.Wait(rdb, replication.Options{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	replication.ReloadOnError(rdb)
	ctx := context.Background()

	confirmed := map[string]bool{}
	write := func(i int) error {
		k := "key:" + strconv.Itoa(i)
		err := rdb.Set(ctx, k, i, 0).Err()
		if err == nil {
			confirmed[k] = true
		}
		return err
	}
	for i := range 300 {
		if err := write(i); err != nil {
			t.Fatalf("write %d before the kill: %v", i, err)
		}
	}
	victim := rc.Masters()[0]
	victim.Stop()
	killed := time.Now()
	var promoted time.Time
	resumed := time.Time{}
	for i := 300; time.Since(killed) < 40*time.Second; i++ {
		if promoted.IsZero() && len(rc.Masters()) == 3 {
			promoted = time.Now()
		}
		if err := write(i); err == nil && !promoted.IsZero() {
			resumed = time.Now()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if promoted.IsZero() || resumed.IsZero() {
		t.Fatalf("no write succeeded within 40 s of the master's kill (promoted %v)", promoted)
	}
	t.Logf("replica promoted %v after the kill; writes resumed %v after the promotion",
		promoted.Sub(killed).Round(time.Millisecond), resumed.Sub(promoted).Round(time.Millisecond))
	if d := resumed.Sub(promoted); d > 15*time.Second {
		t.Fatalf("writes resumed %v after the promotion, want within 15 s", d)
	}
	for k := range confirmed {
		if err := rdb.Get(ctx, k).Err(); err != nil {
			t.Fatalf("confirmed write %s lost after the failover: %v", k, err)
		}
	}
	// The killed master comes back as a replica of its successor.
	victim.Start()
	rc.WaitHealthy(30 * time.Second)
	if n := len(rc.Masters()); n != 3 {
		t.Fatalf("%d masters after the old master rejoined, want 3", n)
	}
}

func events() []event.Event {
	return []event.Event{{Topic: "widgets", Type: "update", URL: "https://example.com/widgets/1", T: 1}}
}
