package dirty_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

// Migrate moves the legacy layout's states (with their TTL, never over a newer state), dirty
// URLs and expired leases into the buckets, leaves running leases to their holder, and does
// nothing more when run again; on one server and on Redis Cluster.
func TestMigrate(t *testing.T) {
	t.Run("single", func(t *testing.T) { testMigrate(t, draintest.StartRedis(t).Client(t, 0)) })
	t.Run("cluster", func(t *testing.T) { testMigrate(t, draintest.StartRedisCluster(t, 3, 0).Client(t)) })
}

func testMigrate(t *testing.T, c redis.UniversalClient) {
	old := dirty.LegacyKeys("rm")
	state := func(url string) string { return dirty.KeysOf("rm", url).State + url }
	s := func(n int) string { return fmt.Sprintf("https://example.com/m/%d", n) }
	// Legacy states: with a TTL, without, unreadable (the gem's Marshal), older and newer than
	// a state a bucketed filter already wrote.
	c.Set(ctx, old.State+s(1), `{"t":100,"seq":7}`, time.Hour)
	c.Set(ctx, old.State+s(2), `{"t":200,"seq":8}`, 0)
	c.Set(ctx, old.State+s(3), "\x04\bo:\x16Routemaster", time.Hour)
	c.Set(ctx, old.State+s(4), `{"t":400,"seq":9}`, time.Hour)
	c.Set(ctx, state(s(4)), `{"t":300,"seq":50}`, time.Hour)
	c.Set(ctx, old.State+s(5), `{"t":500,"seq":10}`, time.Hour)
	c.Set(ctx, state(s(5)), `{"t":600,"seq":51}`, time.Hour)
	// Legacy dirty set: more URLs than one batch.
	var dirtyURLs []string
	for i := range 250 {
		dirtyURLs = append(dirtyURLs, s(1000+i))
		c.SAdd(ctx, old.Items, s(1000+i))
	}
	// Legacy leases: a dead sweeper's expired batch of two, and a running lease.
	c.ZAdd(ctx, old.Leases, redis.Z{Score: 1, Member: s(2000)}, redis.Z{Score: 1, Member: s(2001)},
		redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: s(2002)})
	c.HSet(ctx, old.Owners, s(2000), "dead.0", s(2001), "dead.0", s(2002), "alive.3")
	c.SAdd(ctx, old.Batch+"dead", s(2000), s(2001))
	c.SAdd(ctx, old.Batch+"alive", s(2002))

	m := newMap(t, c, dirty.Options{})
	rep, err := m.Migrate(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := dirty.MigrateReport{States: 5, Dirty: 250, Leased: 2, LeasedLeft: 1}
	if rep != want || rep.Done() {
		t.Fatalf("report %+v, want %+v (not done)", rep, want)
	}
	for url, v := range map[string]string{s(1): `{"t":100,"seq":7}`, s(2): `{"t":200,"seq":8}`, s(4): `{"t":400,"seq":9}`, s(5): `{"t":600,"seq":51}`} {
		if got := c.Get(ctx, state(url)).Val(); got != v {
			t.Errorf("state of %s = %q, want %q", url, got, v)
		}
	}
	if ttl := c.PTTL(ctx, state(s(1))).Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("TTL of a moved state = %v, want the legacy key's hour", ttl)
	}
	if ttl := c.PTTL(ctx, state(s(2))).Val(); ttl != -1 {
		t.Errorf("TTL of a moved state without one = %v", ttl)
	}
	if n := c.Exists(ctx, state(s(3))).Val(); n != 0 {
		t.Error("an unreadable legacy state was copied")
	}
	for i := 1; i <= 5; i++ {
		if c.Exists(ctx, old.State+s(i)).Val() != 0 {
			t.Errorf("legacy state of %s left", s(i))
		}
	}
	listed, err := m.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(dirtyURLs), s(2000), s(2001)); !slices.Equal(slices.Sorted(slices.Values(listed)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("dirty after migration: %d URLs, want %d", len(listed), len(want))
	}
	if c.Exists(ctx, old.Items, old.Batch+"dead").Val() != 0 {
		t.Error("legacy dirty set or the dead batch's record left")
	}
	if c.ZScore(ctx, old.Leases, s(2002)).Err() != nil || c.HGet(ctx, old.Owners, s(2002)).Val() != "alive.3" {
		t.Error("the running legacy lease was touched")
	}

	// Again: nothing more to move; once the running lease has ended it is moved too.
	if rep, err := m.Migrate(ctx, 100); err != nil || rep != (dirty.MigrateReport{LeasedLeft: 1}) {
		t.Fatalf("second run: %+v, %v", rep, err)
	}
	c.ZAdd(ctx, old.Leases, redis.Z{Score: 1, Member: s(2002)})
	if rep, err := m.Migrate(ctx, 100); err != nil || rep != (dirty.MigrateReport{Leased: 1}) || !rep.Done() {
		t.Fatalf("after the lease ended: %+v, %v", rep, err)
	}
	if n := count(t, m); n != 253 {
		t.Fatalf("count = %d, want 253", n)
	}
}
