package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/internal/servicetest"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/reorder"
)

var ctx = context.Background()

func TestMain(m *testing.M) { draintest.Main(m) }

// The built binary answers -version with one line and exit 0, as every drain binary does.
func TestVersion(t *testing.T) {
	servicetest.Version(t, draintest.BuildBinary(t, "."), "drainctl")
	if r := run(nil, "-version"); r.code != 0 || !strings.HasPrefix(r.stdout, "drainctl ") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("-version: %+v", r)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func run(environ []string, args ...string) result {
	var out, errb bytes.Buffer
	code := Main(ctx, args, environ, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestUsage(t *testing.T) {
	r := run(nil, "-h")
	if r.code != 0 {
		t.Fatalf("-h exit %d", r.code)
	}
	for _, want := range []string{"dirty count|list|sweep [--limit N]", "state <url>", "ROUTEMASTER_DRAIN_REDIS", "DRAIN_SWEEP_LEASE", "--json"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("-h lacks %q:\n%s", want, r.stderr)
		}
	}
	if r := run(nil); r.code != 2 {
		t.Fatalf("no command: exit %d", r.code)
	}
	if r := run(nil, "nope"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "nope"`) {
		t.Fatalf("unknown command: %+v", r)
	}
	if r := run(nil, "dirty", "-h"); r.code != 0 || !strings.Contains(r.stderr, "Usage: drainctl dirty") {
		t.Fatalf("dirty -h: %+v", r)
	}
	if r := run([]string{"ROUTEMASTER_DRAIN_REDIS=http://x"}, "dirty", "count"); r.code != 2 || !strings.Contains(r.stderr, "ROUTEMASTER_DRAIN_REDIS") {
		t.Fatalf("bad config: %+v", r)
	}
}

func TestDirty(t *testing.T) {
	r := draintest.StartRedis(t)
	env := []string{"ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, "ns1")}
	m, err := dirty.New(r.Client(t, 0), dirty.Options{Namespace: "ns1"})
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for i := range 5 {
		url := fmt.Sprintf("https://example.com/a?x=%d&y=<z>", i)
		urls = append(urls, url)
		if _, err := m.Mark(ctx, url); err != nil {
			t.Fatal(err)
		}
	}
	if got := run(env, "dirty", "count"); got.code != 0 || got.stdout != "5\n" {
		t.Fatalf("count: %+v", got)
	}
	if got := run(env, "--json", "dirty", "count"); got.stdout != `{"count":5}`+"\n" {
		t.Fatalf("count --json: %+v", got)
	}
	list := run(env, "dirty", "list")
	if lines := strings.Fields(list.stdout); !slices.Equal(slices.Sorted(slices.Values(lines)), urls) {
		t.Fatalf("list: %+v", list)
	}
	if got := run(env, "dirty", "list", "--limit", "2"); len(strings.Fields(got.stdout)) != 2 {
		t.Fatalf("list --limit 2: %+v", got)
	}
	var listed []string
	if got := run(env, "dirty", "list", "--json"); json.Unmarshal([]byte(got.stdout), &listed) != nil || len(listed) != 5 {
		t.Fatalf("list --json: %+v", got)
	}

	swept := run(env, "dirty", "sweep", "--limit", "2")
	first := strings.Fields(swept.stdout)
	if swept.code != 0 || len(first) != 2 {
		t.Fatalf("sweep --limit 2: %+v", swept)
	}
	if got := run(env, "dirty", "count"); got.stdout != "3\n" {
		t.Fatalf("count after sweep: %+v", got)
	}
	var rest []string
	got := run(env, "--json", "dirty", "sweep")
	if json.Unmarshal([]byte(got.stdout), &rest) != nil || len(rest) != 3 {
		t.Fatalf("sweep --json: %+v", got)
	}
	if all := slices.Sorted(slices.Values(append(first, rest...))); !slices.Equal(all, urls) {
		t.Fatalf("swept %v, want %v", all, urls)
	}
	if got := run(env, "--json", "dirty", "sweep"); got.stdout != "[]\n" {
		t.Fatalf("empty sweep --json: %+v", got)
	}
	// Other namespaces are untouched.
	if got := run([]string{"ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, "")}, "dirty", "count"); got.stdout != "0\n" {
		t.Fatalf("default namespace: %+v", got)
	}

	for _, bad := range [][]string{{"dirty"}, {"dirty", "nuke"}, {"dirty", "list", "--limit", "x"}, {"dirty", "list", "extra"}} {
		if got := run(env, bad...); got.code != 2 || !strings.Contains(got.stderr, "Usage: drainctl dirty") {
			t.Fatalf("%v: %+v", bad, got)
		}
	}
}

// A leased URL (a sweeper is handing it on) is counted and listed, but not swept twice.
func TestDirtySweepSkipsLeased(t *testing.T) {
	r := draintest.StartRedis(t)
	env := []string{"ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, "")}
	m, err := dirty.New(r.Client(t, 0), dirty.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Mark(ctx, "https://example.com/1")
	m.Mark(ctx, "https://example.com/2")
	leased, _, err := m.Lease(ctx, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := run(env, "dirty", "count"); got.stdout != "2\n" {
		t.Fatalf("count: %+v", got)
	}
	got := run(env, "dirty", "sweep")
	if got.code != 0 || strings.TrimSpace(got.stdout) == leased[0] || len(strings.Fields(got.stdout)) != 1 {
		t.Fatalf("sweep printed %q while %s is leased", got.stdout, leased[0])
	}
}

func TestState(t *testing.T) {
	r := draintest.StartRedis(t)
	c := r.Client(t, 0)
	env := []string{"ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, "")}
	url := "https://example.com/orders/1"
	if got := run(env, "state", url); got.code != 0 || got.stdout != "0\n" {
		t.Fatalf("unknown URL: %+v", got)
	}
	c.Set(ctx, reorder.StateKey("rm", url), `{"t":1559567869210,"seq":42}`, 0)
	if got := run(env, "state", url); got.stdout != "1559567869210\n" {
		t.Fatalf("state: %+v", got)
	}
	if got := run(env, "state", "--json", url); got.stdout != `{"url":"https://example.com/orders/1","t":1559567869210,"seq":42}`+"\n" {
		t.Fatalf("state --json: %+v", got)
	}
	c.Set(ctx, reorder.StateKey("rm", url), `123`, 0) // the filter counts it as never seen: say so
	if got := run(env, "state", url); got.code != 1 || !strings.Contains(got.stderr, "never seen") {
		t.Fatalf("plain integer state: %+v", got)
	}
	c.Set(ctx, reorder.StateKey("rm", url), `\x04\bgarbage`, 0)
	if got := run(env, "state", url); got.code != 1 || !strings.Contains(got.stderr, "not JSON") {
		t.Fatalf("garbage state: %+v", got)
	}
	if got := run(env, "state"); got.code != 2 {
		t.Fatalf("no URL: %+v", got)
	}
}

func TestRedisDown(t *testing.T) {
	r := draintest.StartRedis(t)
	env := []string{"ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, "")}
	r.Stop()
	if got := run(env, "dirty", "count"); got.code != 1 || !strings.Contains(got.stderr, "drainctl dirty:") {
		t.Fatalf("Redis down: %+v", got)
	}
}

// dirty migrate moves the layout before buckets into the buckets; a second run finds nothing.
func TestDirtyMigrate(t *testing.T) {
	r := draintest.StartRedis(t)
	c := r.Client(t, 0)
	env := []string{"ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, "")}
	old := dirty.LegacyKeys("rm")
	url := "https://example.com/orders/1"
	c.Set(ctx, old.State+url, `{"t":1559567869210,"seq":42}`, time.Hour)
	c.SAdd(ctx, old.Items, url, "https://example.com/orders/2")
	c.ZAdd(ctx, old.Leases, redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: "https://example.com/orders/3"})
	c.HSet(ctx, old.Owners, "https://example.com/orders/3", "b.0")

	got := run(env, "dirty", "migrate")
	if got.code != 0 || got.stdout != "states 1\nstates_changed 0\ndirty 2\nleased 0\nleased_left 1\n" || !strings.Contains(got.stderr, "run again") {
		t.Fatalf("migrate: %+v", got)
	}
	if got := run(env, "state", url); got.stdout != "1559567869210\n" {
		t.Fatalf("state after migrate: %+v", got)
	}
	if got := run(env, "dirty", "count"); got.stdout != "2\n" {
		t.Fatalf("count after migrate: %+v", got)
	}
	c.ZAdd(ctx, old.Leases, redis.Z{Score: 1, Member: "https://example.com/orders/3"}) // its holder stopped
	got = run(env, "--json", "dirty", "migrate")
	if got.code != 0 || got.stdout != `{"states":0,"states_changed":0,"dirty":0,"leased":1,"leased_left":0,"done":true}`+"\n" || got.stderr != "" {
		t.Fatalf("migrate --json: %+v", got)
	}
	if keys := c.Keys(ctx, "{rm}:*").Val(); len(keys) != 0 {
		t.Fatalf("legacy keys left: %v", keys)
	}
	if got := run(env, "dirty", "migrate", "--limit", "3"); got.code != 2 {
		t.Fatalf("migrate --limit: %+v", got)
	}
}
