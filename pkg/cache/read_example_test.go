package cache_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

// exampleCache starts a private redis-server and an origin that answers {"path":...,"v":...}
// with the Accept header's version, and returns a Cache reading through the API client, the
// origin, how many requests reached it, and the function that stops everything.
func exampleCache() (*cache.Cache, *redis.Client, *httptest.Server, *atomic.Int64, func()) {
	s := draintest.NewScope()
	srv := draintest.StartRedis(s)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	var fetches atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"accept":%q}`, r.URL.Path, r.Header.Get("Accept"))
	}))
	client, _ := apiclient.New(apiclient.Options{})
	c, _ := cache.New(rdb, cache.Options{Fetcher: cache.APIFetcher(client)})
	return c, rdb, origin, &fetches, func() { origin.Close(); _ = rdb.Close(); s.Close() }
}

// Get reads through the cache: the first read fetches from the origin and stores the
// representation, the next one is a hit (the gem's Cache#get).
func ExampleCache_Get() {
	c, _, origin, fetches, stop := exampleCache()
	defer stop()
	ctx := context.Background()
	first, _ := c.Get(ctx, origin.URL+"/widgets/123", cache.Variant{})
	again, _ := c.Get(ctx, origin.URL+"/widgets/123", cache.Variant{})
	fmt.Println(first.Cached, again.Cached, string(again.Body), fetches.Load())
	// Output: false true {"path":"/widgets/123","accept":"application/json"} 1
}

// Go is the gem's Cache#fget: a future, so that many reads (and their origin fetches, bounded
// by Options.Parallel) run at once.
func ExampleCache_Go() {
	c, _, origin, _, stop := exampleCache()
	defer stop()
	ctx := context.Background()
	var futures []*cache.Future
	for _, id := range []string{"1", "2", "3"} {
		futures = append(futures, c.Go(ctx, origin.URL+"/widgets/"+id, cache.Variant{}))
	}
	for _, f := range futures {
		resp, err := f.Wait()
		if err != nil {
			panic(err)
		}
		fmt.Println(string(resp.Body))
	}
	// Output:
	// {"path":"/widgets/1","accept":"application/json"}
	// {"path":"/widgets/2","accept":"application/json"}
	// {"path":"/widgets/3","accept":"application/json"}
}

// Variants (API version, locale) are cached side by side under one key, each with its own
// invalidation index.
func ExampleVariant() {
	c, _, origin, fetches, stop := exampleCache()
	defer stop()
	ctx := context.Background()
	url := origin.URL + "/menus/5"
	v2 := cache.Variant{Version: "2", Locale: "fr"}
	a, _ := c.Get(ctx, url, v2)
	b, _ := c.Get(ctx, url, cache.Variant{})
	again, _ := c.Get(ctx, url, v2)
	fmt.Println(string(a.Body))
	fmt.Println(string(b.Body))
	fmt.Println(again.Cached, fetches.Load())
	// Output:
	// {"path":"/menus/5","accept":"application/json;v=2"}
	// {"path":"/menus/5","accept":"application/json"}
	// true 2
}

// Bust drops a URL's cached representations (every variant) and bumps its index, so a fetch
// that started before the bust never stores its older copy (the CacheBusting drain; the
// filter does this for every event when DRAIN_CACHE_MODE=bust).
func ExampleCache_Bust() {
	c, _, origin, fetches, stop := exampleCache()
	defer stop()
	ctx := context.Background()
	url := origin.URL + "/orders/1"
	_, _ = c.Get(ctx, url, cache.Variant{})
	_, _ = c.Bust(ctx, url)
	after, _ := c.Lookup(ctx, url, cache.Variant{}) // a read that never fetches
	again, _ := c.Get(ctx, url, cache.Variant{})
	fmt.Println(after == nil, again.Cached, fetches.Load())
	// Output: true false 2
}

// FixTTL is the gem's FixCacheTTL task: it gives every cache key without a TTL the cache's
// expiry.
func ExampleCache_FixTTL() {
	c, rdb, origin, _, stop := exampleCache()
	defer stop()
	ctx := context.Background()
	url := origin.URL + "/legacy/1"
	_, _ = c.Get(ctx, url, cache.Variant{})
	rdb.Persist(ctx, c.Key(url)) // what a pre-3.0.1 gem left behind
	report, _ := c.FixTTL(ctx, cache.FixTTLOptions{Batch: 100})
	ttl := rdb.TTL(ctx, c.Key(url)).Val()
	fmt.Println(report.Scanned, report.Fixed, ttl > 89*24*time.Hour)
	// Output: 1 1 true
}
