package draintest_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

func TestRedisCluster(t *testing.T) {
	ctx := context.Background()
	c := draintest.StartRedisCluster(t, 3, 1)
	if n := len(c.Addrs()); n != 6 {
		t.Fatalf("%d nodes, want 6", n)
	}
	if u := c.URL("ns"); strings.Count(u, ",") != 5 || !strings.HasSuffix(u, "/0/ns") {
		t.Fatalf("URL = %q", u)
	}
	rdb := c.Client(t)
	var masters atomic.Int32
	if err := rdb.ForEachMaster(ctx, func(context.Context, *redis.Client) error { masters.Add(1); return nil }); err != nil || masters.Load() != 3 {
		t.Fatalf("%d masters, %v", masters.Load(), err)
	}
	for i := range 300 {
		if err := rdb.Set(ctx, "k"+string(rune('a'+i%26))+string(rune('a'+i/26)), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	per, err := draintest.MasterKeys(ctx, rdb)
	if err != nil || len(per) != 3 {
		t.Fatalf("keys per master %v, %v", per, err)
	}
	for addr, n := range per {
		if n == 0 || n == 300 {
			t.Fatalf("master %s holds %d of 300 keys", addr, n)
		}
	}
	// Killing a master: its replica takes its slots over, and writes succeed again.
	m, err := rdb.MasterForKey(ctx, "ka")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(m.Options().Addr); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for err := rdb.Set(ctx, "ka", "again", 0).Err(); err != nil; err = rdb.Set(ctx, "ka", "again", 0).Err() {
		if time.Now().After(deadline) {
			t.Fatalf("no failover within 20s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.Kill("127.0.0.1:1"); err == nil {
		t.Fatal("killing an unknown node is no error")
	}
}
