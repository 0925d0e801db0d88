package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/cache"
	"github.com/routemaster-drain/drain/config"
	"github.com/routemaster-drain/drain/draintest"
)

type cacheWorld struct {
	t       *testing.T
	cfg     *config.Config
	c       *cache.Cache
	origin  *httptest.Server
	fetches atomic.Int64
}

func newCacheWorld(t *testing.T) *cacheWorld {
	t.Helper()
	r := draintest.StartRedis(t)
	w := &cacheWorld{t: t}
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
	cfg, err := config.Load(config.Drainctl, []string{"ROUTEMASTER_CACHE_REDIS=" + r.URL(3, "ctl"), "ROUTEMASTER_CACHE_EXPIRY=3600"})
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.c, err = cache.New(cache.Config{Redis: r.Client(t, 3), Namespace: "ctl", Expiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *cacheWorld) run(args ...string) (code int, stdout, stderr string) {
	w.t.Helper()
	var o, e bytes.Buffer
	code = runCache(context.Background(), w.cfg, args, &o, &e)
	return code, o.String(), e.String()
}

func TestCacheGetNeverFetchesWithoutFetch(t *testing.T) {
	w := newCacheWorld(t)
	u := w.origin.URL + "/w/1"
	code, out, errOut := w.run("get", u)
	if code != 1 || out != "" || !strings.Contains(errOut, "miss") {
		t.Fatalf("get on a miss: code %d out %q err %q", code, out, errOut)
	}
	if w.fetches.Load() != 0 {
		t.Fatal("get fetched without --fetch")
	}

	code, out, _ = w.run("get", u, "--fetch", "--version", "2", "--locale", "fr")
	want := `{"path":"/w/1","accept":"application/json;v=2","lang":"fr"}` + "\n"
	if code != 0 || out != want {
		t.Fatalf("get --fetch: code %d out %q", code, out)
	}
	// Now cached: served without a fetch, and only for that variant.
	code, out, _ = w.run("get", "--version", "2", "--locale", "fr", u)
	if code != 0 || out != want || w.fetches.Load() != 1 {
		t.Fatalf("get after fetch: code %d out %q fetches %d", code, out, w.fetches.Load())
	}
	if code, _, _ = w.run("get", u); code != 1 {
		t.Fatalf("plain variant: code %d, want a miss", code)
	}

	code, out, _ = w.run("get", u, "--version", "2", "--locale", "fr", "--json")
	var doc map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc["status"] != float64(200) || doc["cached"] != true ||
		!strings.Contains(doc["body"].(string), "/w/1") {
		t.Fatalf("get --json: code %d out %s", code, out)
	}

	// An origin error on --fetch is reported, not cached.
	code, _, errOut = w.run("get", "--fetch", w.origin.URL+"/missing")
	if code != 1 || !strings.Contains(errOut, "404") {
		t.Fatalf("get --fetch on 404: code %d err %q", code, errOut)
	}
}

func TestCacheBust(t *testing.T) {
	w := newCacheWorld(t)
	u := w.origin.URL + "/b"
	if code, _, _ := w.run("get", "--fetch", u); code != 0 {
		t.Fatal("fetch failed")
	}
	code, out, _ := w.run("bust", u)
	if code != 0 || out != "busted "+u+" (index 1)\n" {
		t.Fatalf("bust: code %d out %q", code, out)
	}
	if code, _, _ := w.run("get", u); code != 1 {
		t.Fatal("still cached after bust")
	}
	code, out, _ = w.run("bust", "--json", u)
	if code != 0 || strings.TrimSpace(out) != fmt.Sprintf(`{"index":2,"url":%q}`, u) {
		t.Fatalf("bust --json: code %d out %q", code, out)
	}
}

func TestCacheFixTTL(t *testing.T) {
	w := newCacheWorld(t)
	r := w.c
	ctx := context.Background()
	// Two keys without TTL (written by something else), one with.
	if _, err := r.Invalidate(ctx, "https://x/1"); err != nil {
		t.Fatal(err)
	}
	rdb := newCacheRedis(w.cfg)
	defer rdb.Close()
	rdb.HSet(ctx, cache.Key("ctl", "https://x/2"), "current_index", 3)
	rdb.HSet(ctx, cache.Key("ctl", "https://x/3"), "current_index", 1)
	code, out, _ := w.run("fix-ttl")
	if code != 0 || out != "scanned 3\nfixed 2\n" {
		t.Fatalf("fix-ttl: code %d out %q", code, out)
	}
	if ttl := rdb.TTL(ctx, cache.Key("ctl", "https://x/2")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL after fix-ttl %v", ttl)
	}
	code, out, _ = w.run("fix-ttl", "--json")
	if code != 0 || strings.TrimSpace(out) != `{"fixed":0,"scanned":3}` {
		t.Fatalf("fix-ttl --json: code %d out %q", code, out)
	}
}

func TestCacheUsage(t *testing.T) {
	w := newCacheWorld(t)
	for _, args := range [][]string{{}, {"nope"}, {"get"}, {"get", "a", "b"}, {"fix-ttl", "x"}, {"get", "--bogus", "u"}} {
		if code, _, errOut := w.run(args...); code != 2 || errOut == "" {
			t.Errorf("%v: code %d err %q, want 2 and a message", args, code, errOut)
		}
	}
}
