package filtering_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/reorder"
)

// The filter binary on a Redis Cluster of 3 masters (the drain Redis set to the comma-separated
// seed URLs): the state and dirty marks of 3,000 URLs spread so that no master holds more than
// 45 % of the keys, every master runs reorder scripts, and every fresh event is handed on once.
func TestFilterOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ctx := context.Background()
	bin := draintest.BuildBinary(t, "../..")
	cl := draintest.StartRedisCluster(t, 3, 0)
	rdb := cl.Client(t)
	e := newEnv(t)
	admin := draintest.FreeAddr(t)
	p := draintest.StartProcess(t, bin, append(e.env, "ROUTEMASTER_DRAIN_REDIS="+cl.URL(""), "DRAIN_ADMIN_ADDR="+admin))
	p.WaitHTTP("http://"+admin+"/readyz", 200, 30*time.Second)

	const n = 3000
	for i := 0; i < n; i += 100 {
		batch := make([]ev, 100)
		for j := range batch {
			batch[j] = ev{"update", url(fmt.Sprint("cl/", i+j)), 7}
		}
		e.publish("orders", batch...)
	}
	e.waitDone(60 * time.Second)

	handed := map[string]int{}
	for _, m := range e.changed() {
		for _, ev := range m.Events {
			handed[ev.URL]++
		}
	}
	if len(handed) != n {
		t.Fatalf("%d URLs handed on, want %d", len(handed), n)
	}
	for u, k := range handed {
		if k != 1 {
			t.Fatalf("%s handed on %d times", u, k)
		}
	}
	for _, u := range []string{url("cl/0"), url("cl/2999")} {
		if st, err := reorder.ReadState(ctx, rdb, "rm", u); err != nil || st.T != 7 {
			t.Fatalf("state of %s: %+v, %v", u, st, err)
		}
	}
	if c, err := mustDirty(t, rdb).Count(ctx); err != nil || c != n {
		t.Fatalf("dirty count %d, %v", c, err)
	}
	per, err := draintest.MasterKeys(ctx, rdb)
	if err != nil || len(per) != 3 {
		t.Fatalf("keys per master: %v, %v", per, err)
	}
	var total int64
	for _, k := range per {
		total += k
	}
	var mu sync.Mutex
	scripts := map[string]bool{}
	if err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		info, err := m.Info(ctx, "commandstats").Result()
		mu.Lock()
		scripts[m.Options().Addr] = strings.Contains(info, "cmdstat_evalsha:calls=")
		mu.Unlock()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for addr, k := range per {
		t.Logf("master %s: %d of %d keys (%.1f %%)", addr, k, total, 100*float64(k)/float64(total))
		if float64(k) > 0.45*float64(total) {
			t.Errorf("master %s holds %d of %d keys", addr, k, total)
		}
		if !scripts[addr] {
			t.Errorf("master %s ran no reorder script", addr)
		}
	}
}

func mustDirty(t *testing.T, rdb redis.UniversalClient) *dirty.Map {
	t.Helper()
	m, err := dirty.New(rdb, dirty.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
