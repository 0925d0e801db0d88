package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

type cacheWorld struct {
	env     []string
	rdb     *redis.Client
	origin  *httptest.Server
	fetches atomic.Int64
}

func newCacheWorld(t *testing.T) *cacheWorld {
	t.Helper()
	r := draintest.StartRedis(t)
	w := &cacheWorld{rdb: r.Client(t, 3)}
	w.origin = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		w.fetches.Add(1)
		if req.URL.Path == "/missing" {
			http.NotFound(rw, req)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, `{"path":%q,"accept":%q,"lang":%q}`, req.URL.Path, req.Header.Get("Accept"), req.Header.Get("Accept-Language"))
	}))
	t.Cleanup(w.origin.Close)
	w.env = []string{"ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, ""), "ROUTEMASTER_CACHE_REDIS=" + r.URL(3, "ctl"), "ROUTEMASTER_CACHE_EXPIRY=3600"}
	return w
}

func TestCacheGetNeverFetchesWithoutFetch(t *testing.T) {
	w := newCacheWorld(t)
	u := w.origin.URL + "/w/1"
	if r := run(w.env, "cache", "get", u); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "miss") {
		t.Fatalf("get on a miss: %+v", r)
	}
	if w.fetches.Load() != 0 {
		t.Fatal("get fetched without --fetch")
	}

	want := `{"path":"/w/1","accept":"application/json;v=2","lang":"fr"}` + "\n"
	if r := run(w.env, "cache", "get", u, "--fetch", "--version", "2", "--locale", "fr"); r.code != 0 || r.stdout != want {
		t.Fatalf("get --fetch: %+v", r)
	}
	// Now cached: served without a fetch, and only for that variant.
	if r := run(w.env, "cache", "get", "--version", "2", "--locale", "fr", u); r.code != 0 || r.stdout != want || w.fetches.Load() != 1 {
		t.Fatalf("get after fetch: %+v, fetches %d", r, w.fetches.Load())
	}
	if r := run(w.env, "cache", "get", u); r.code != 1 {
		t.Fatalf("plain variant: %+v, want a miss", r)
	}

	r := run(w.env, "--json", "cache", "get", u, "--version", "2", "--locale", "fr")
	var doc map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &doc) != nil || doc["status"] != float64(200) || doc["cached"] != true ||
		doc["body"] != strings.TrimSpace(want) || doc["headers"].(map[string]any)["Content-Type"] != "application/json" {
		t.Fatalf("get --json: %+v", r)
	}

	// An origin error on --fetch is reported, and nothing is cached.
	if r := run(w.env, "cache", "get", "--fetch", w.origin.URL+"/missing"); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Fatalf("get --fetch on 404: %+v", r)
	}
	if n := w.rdb.Exists(ctx, cache.Key("ctl", w.origin.URL+"/missing")).Val(); n != 0 {
		t.Fatal("a 404 was cached")
	}
}

func TestCacheBust(t *testing.T) {
	w := newCacheWorld(t)
	u := w.origin.URL + "/b"
	if r := run(w.env, "cache", "get", "--fetch", u); r.code != 0 {
		t.Fatalf("fetch: %+v", r)
	}
	if r := run(w.env, "cache", "bust", u); r.code != 0 || r.stdout != "busted "+u+" (index 1)\n" {
		t.Fatalf("bust: %+v", r)
	}
	if r := run(w.env, "cache", "get", u); r.code != 1 {
		t.Fatalf("still cached after bust: %+v", r)
	}
	if r := run(w.env, "--json", "cache", "bust", u); r.code != 0 || strings.TrimSpace(r.stdout) != fmt.Sprintf(`{"index":2,"url":%q}`, u) {
		t.Fatalf("bust --json: %+v", r)
	}
	if ttl := w.rdb.TTL(ctx, cache.Key("ctl", u)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL after bust %v", ttl)
	}
}

func TestCacheFixTTL(t *testing.T) {
	w := newCacheWorld(t)
	w.rdb.HSet(ctx, cache.Key("ctl", "https://x/1"), "current_index", 1)
	w.rdb.Expire(ctx, cache.Key("ctl", "https://x/1"), time.Minute)
	w.rdb.HSet(ctx, cache.Key("ctl", "https://x/2"), "current_index", 3) // no TTL
	w.rdb.HSet(ctx, cache.Key("ctl", "https://x/3"), "current_index", 1) // no TTL
	if r := run(w.env, "cache", "fix-ttl"); r.code != 0 || r.stdout != "scanned 3\nfixed 2\n" {
		t.Fatalf("fix-ttl: %+v", r)
	}
	if ttl := w.rdb.TTL(ctx, cache.Key("ctl", "https://x/2")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL after fix-ttl %v", ttl)
	}
	if ttl := w.rdb.TTL(ctx, cache.Key("ctl", "https://x/1")).Val(); ttl > time.Minute {
		t.Fatalf("a key that had a TTL got %v", ttl)
	}
	if r := run(w.env, "--json", "cache", "fix-ttl", "--batch", "1"); r.code != 0 || strings.TrimSpace(r.stdout) != `{"fixed":0,"scanned":3}` {
		t.Fatalf("fix-ttl --json: %+v", r)
	}
}

func TestCacheUsageErrors(t *testing.T) {
	w := newCacheWorld(t)
	for _, args := range [][]string{{"cache"}, {"cache", "nope"}, {"cache", "get"}, {"cache", "get", "a", "b"}, {"cache", "fix-ttl", "x"}, {"cache", "get", "--bogus", "u"}} {
		if r := run(w.env, args...); r.code != 2 || !strings.Contains(r.stderr, "Usage: drainctl cache") {
			t.Errorf("%v: %+v, want exit 2 with the usage", args, r)
		}
	}
}
