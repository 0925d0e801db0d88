package reorder_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
)

// On a Redis Cluster of 3 masters the filter's keys and script calls spread over all of them,
// every URL stays atomic (replay, dirty marking, first-kept order across buckets), and a sweep
// hands every URL on once.
func TestCluster(t *testing.T) {
	ctx := context.Background()
	cl := draintest.StartRedisCluster(t, 3, 0)
	rdb := cl.Client(t)
	for b := range dirty.Buckets {
		slot, err := rdb.ClusterKeySlot(ctx, dirty.KeysFor("rm", b).Items).Result()
		if err != nil || slot < int64(b*1024) || slot >= int64((b+1)*1024) {
			t.Fatalf("bucket %d: slot %d, %v", b, slot, err)
		}
	}
	f := newFilter(t, rdb, reorder.Options{TTL: time.Hour})
	if err := f.Load(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := 0; i < n; i += 100 {
		batch := make([]event.Event, 100)
		for j := range batch {
			batch[j] = ev(event.Update, u(fmt.Sprint("c", i+j)), 5)
		}
		res := run(t, f, uint64(1+i/100), batch...)
		if len(res.Fresh) != 100 || len(res.NewlyDirty) != 100 {
			t.Fatalf("batch %d: %d fresh, %d newly dirty", i/100, len(res.Fresh), len(res.NewlyDirty))
		}
		for j, e := range res.Fresh {
			if e.URL != batch[j].URL {
				t.Fatalf("batch %d: fresh[%d] = %s, want %s (batch order)", i/100, j, e.URL, batch[j].URL)
			}
		}
	}
	per, err := draintest.MasterKeys(ctx, rdb)
	if err != nil || len(per) != 3 {
		t.Fatalf("keys per master: %v, %v", per, err)
	}
	var total int64
	for _, k := range per {
		total += k
	}
	if total != n+dirty.Buckets {
		t.Fatalf("%d keys, want %d states and %d dirty sets", total, n, dirty.Buckets)
	}
	for addr, k := range per {
		if share := float64(k) / float64(total); share > 0.45 || share < 0.2 {
			t.Errorf("master %s holds %d of %d keys (%.0f %%)", addr, k, total, 100*share)
		}
		t.Logf("master %s: %d keys", addr, k)
	}
	var mu sync.Mutex
	calls := map[string]string{}
	if err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		info, err := m.Info(ctx, "commandstats").Result()
		mu.Lock()
		calls[m.Options().Addr] = info
		mu.Unlock()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for addr, info := range calls {
		if !strings.Contains(info, "cmdstat_evalsha:calls=") {
			t.Errorf("master %s ran no reorder script", addr)
		}
	}

	// Order, replay and marking across buckets: [b@5, a@6, b@7, a@9, c@1, noop c@2], the
	// URLs of three buckets.
	var abc []string
	used := map[int]bool{}
	for i := 0; len(abc) < 3; i++ {
		if url := u(fmt.Sprint("x", i)); !used[dirty.Bucket(url)] {
			used[dirty.Bucket(url)] = true
			abc = append(abc, url)
		}
	}
	a, b, c := abc[0], abc[1], abc[2]
	batch := []event.Event{ev(event.Update, b, 5), ev(event.Update, a, 6), ev(event.Update, b, 7), ev(event.Update, a, 9), ev(event.Update, c, 1), ev(event.Noop, c, 2)}
	first := run(t, f, 900, batch...)
	want := brief([]event.Event{batch[2], batch[3], batch[5]})
	if got := brief(first.Fresh); !slices.Equal(got, want) {
		t.Fatalf("fresh = %v, want %v", got, want)
	}
	if !slices.Equal(first.NewlyDirty, []string{b, a, c}) {
		t.Fatalf("newly dirty = %v", first.NewlyDirty)
	}
	again := run(t, f, 900, batch...)
	if got := brief(again.Fresh); !slices.Equal(got, want) || len(again.NewlyDirty) != 0 {
		t.Fatalf("replay: fresh %v, newly dirty %v", got, again.NewlyDirty)
	}
	if st, err := reorder.ReadState(ctx, rdb, "rm", a); err != nil || st != (reorder.State{T: 9, Seq: 900}) {
		t.Fatalf("state of a = %+v, %v", st, err)
	}

	// A sweep hands every dirty URL on once.
	m, err := dirty.New(rdb, dirty.Options{})
	if err != nil {
		t.Fatal(err)
	}
	swept := map[string]int{}
	if err := m.Sweep(ctx, 0, func(url string) (bool, error) { swept[url]++; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if len(swept) != n+3 {
		t.Fatalf("swept %d URLs, want %d", len(swept), n+3)
	}
	for url, k := range swept {
		if k != 1 {
			t.Fatalf("%s swept %d times", url, k)
		}
	}
	if left, err := m.Count(ctx); err != nil || left != 0 {
		t.Fatalf("%d left, %v", left, err)
	}
}
