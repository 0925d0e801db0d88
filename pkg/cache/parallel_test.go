package cache_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

// gatedFetcher answers 200 for every URL, but each fetch waits for one value on gate; it
// records how many fetches ran at once.
type gatedFetcher struct {
	gate          chan struct{}
	mu            sync.Mutex
	running, peak int
	started       int
}

func (g *gatedFetcher) Fetch(ctx context.Context, url string, _ cache.Variant) (*cache.Response, error) {
	g.mu.Lock()
	g.running++
	g.started++
	g.peak = max(g.peak, g.running)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running--
		g.mu.Unlock()
	}()
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &cache.Response{Status: 200, Header: http.Header{}, Body: []byte(url)}, nil
}

func (g *gatedFetcher) counts() (running, peak, started int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running, g.peak, g.started
}

// Futures and GetMany share the Cache's Parallel slots: with Parallel 3, twelve futures and
// a GetMany of five never run more than three fetches at once, and all of them finish.
func TestGoAndGetManyShareParallelSlots(t *testing.T) {
	r := draintest.StartRedis(t)
	g := &gatedFetcher{gate: make(chan struct{})}
	c, err := cache.New(r.Client(t, 0), cache.Options{Namespace: "ns", Fetcher: g, Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var futures []*cache.Future
	for i := range 12 {
		futures = append(futures, c.Go(ctx, fmt.Sprintf("https://x/f/%d", i), cache.Variant{}))
	}
	var urls []string
	for i := range 5 {
		urls = append(urls, fmt.Sprintf("https://x/m/%d", i))
	}
	many := make(chan []cache.Result, 1)
	go func() { many <- c.GetMany(ctx, urls, cache.Variant{}) }()

	deadline := time.Now().Add(10 * time.Second)
	for released := 0; released < 17; {
		running, _, _ := g.counts()
		if running == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no fetch running after %d of 17 released", released)
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		g.gate <- struct{}{} // lets exactly one running fetch finish
		released++
	}
	for i, f := range futures {
		resp, err := f.Wait()
		if err != nil || string(resp.Body) != fmt.Sprintf("https://x/f/%d", i) {
			t.Fatalf("future %d: %v %v", i, resp, err)
		}
	}
	for i, res := range <-many {
		if res.Err != nil || string(res.Response.Body) != urls[i] {
			t.Fatalf("GetMany %d: %+v", i, res)
		}
	}
	if _, peak, started := g.counts(); peak != 3 || started != 17 {
		t.Fatalf("peak %d fetches at once (want 3, the Parallel bound), %d started (want 17)", peak, started)
	}
}

// A future whose context ends while it waits for a slot fails with the context's error and
// fetches nothing.
func TestGoWaitingForASlotHonoursContext(t *testing.T) {
	r := draintest.StartRedis(t)
	g := &gatedFetcher{gate: make(chan struct{})}
	c, err := cache.New(r.Client(t, 0), cache.Options{Namespace: "ns", Fetcher: g, Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	busy := c.Go(context.Background(), "https://x/busy", cache.Variant{})
	eventually(t, func() bool { running, _, _ := g.counts(); return running == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	waiting := c.Go(ctx, "https://x/waiting", cache.Variant{})
	cancel()
	if _, err := waiting.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting future: %v, want context.Canceled", err)
	}
	res := c.GetMany(ctx, []string{"https://x/a", "https://x/b"}, cache.Variant{})
	for _, r := range res {
		if !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("GetMany after cancel: %+v", r)
		}
	}
	g.gate <- struct{}{}
	if _, err := busy.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, _, started := g.counts(); started != 1 {
		t.Fatalf("%d fetches started, want 1", started)
	}
}

// Every failure of the cache Redis wraps ErrRedis; an origin failure does not.
func TestRedisErrorsWrapErrRedis(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	u := e.url("/r")
	e.origin.status.Store(500)
	if _, err := e.cache.Get(ctx, u, cache.Variant{}); err == nil || errors.Is(err, cache.ErrRedis) {
		t.Fatalf("origin 500: %v (must not wrap ErrRedis)", err)
	}
	if err := e.rdb.Close(); err != nil { // every later command fails at the client
		t.Fatal(err)
	}
	_, getErr := e.cache.Get(ctx, u, cache.Variant{})
	_, stateErr := e.cache.State(ctx, u, cache.Variant{})
	_, invErr := e.cache.Invalidate(ctx, u)
	_, _, bustErr := e.cache.BustIf(ctx, u, 1)
	_, refreshErr := e.cache.Refresh(ctx, u, cache.Variant{})
	for name, err := range map[string]error{"Get": getErr, "State": stateErr, "Invalidate": invErr, "BustIf": bustErr, "Refresh": refreshErr} {
		if !errors.Is(err, cache.ErrRedis) {
			t.Errorf("%s with Redis closed: %v, want ErrRedis", name, err)
		}
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
