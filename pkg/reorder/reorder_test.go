package reorder_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
)

// newRedis returns a client of a fresh database of a private Redis server.
func newRedis(t testing.TB) *redis.Client {
	t.Helper()
	srv := draintest.StartRedis(t)
	return srv.Client(t, 0)
}

// newFilter returns the filter of o on c.
func newFilter(t testing.TB, c redis.Scripter, o reorder.Options) *reorder.Filter {
	t.Helper()
	f, err := reorder.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestNewOptions: the zero Options are the gem's namespace and a 90-day state TTL; bad
// options and a nil client are refused.
func TestNewOptions(t *testing.T) {
	if reorder.DefaultNamespace != "rm" || reorder.DefaultTTL != 90*24*time.Hour {
		t.Errorf("defaults %q, %v", reorder.DefaultNamespace, reorder.DefaultTTL)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	if _, err := reorder.New(nil, reorder.Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	for _, o := range []reorder.Options{{Namespace: "a}"}, {TTL: -time.Second}, {TTL: time.Microsecond}} {
		if _, err := reorder.New(c, o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func ev(typ event.Type, url string, t int64) event.Event {
	return event.Event{Topic: "stuff", Type: typ, URL: url, T: t}
}

func u(n string) string { return "https://example.com/" + n }

// dirtySet returns every URL in the dirty sets of namespace ns, sorted.
func dirtySet(t *testing.T, c *redis.Client, ns string) []string {
	t.Helper()
	var out []string
	for b := range dirty.Buckets {
		out = append(out, c.SMembers(context.Background(), dirty.KeysFor(ns, b).Items).Val()...)
	}
	slices.Sort(out)
	return out
}

// isDirty reports whether url is in its bucket's dirty set of namespace rm.
func isDirty(c *redis.Client, url string) bool {
	return c.SIsMember(context.Background(), dirty.KeysOf("rm", url).Items, url).Val()
}

// brief renders events as "url@t" with the URL's last path segment, for readable failures.
func brief(events []event.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%s@%d", e.URL[len("https://example.com/"):], e.T)
	}
	return out
}

func run(t *testing.T, f *reorder.Filter, seq uint64, events ...event.Event) reorder.Result {
	t.Helper()
	res, err := f.Run(context.Background(), seq, events, true)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestWorkedExamples(t *testing.T) {
	c := newRedis(t)
	type step struct {
		in   []event.Event
		want []string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"create on blank redis is kept", []step{{[]event.Event{ev(event.Create, u("u1"), 1234)}, []string{"u1@1234"}}}},
		{"update on blank redis is kept", []step{{[]event.Event{ev(event.Update, u("u1"), 1234)}, []string{"u1@1234"}}}},
		{"delete on blank redis is kept", []step{{[]event.Event{ev(event.Delete, u("u1"), 1234)}, []string{"u1@1234"}}}},
		{"newer later in batch wins", []step{{[]event.Event{ev(event.Update, u("u1"), 1234), ev(event.Update, u("u1"), 1235)}, []string{"u1@1235"}}}},
		{"older later in batch dropped", []step{{[]event.Event{ev(event.Update, u("u1"), 1234), ev(event.Update, u("u1"), 1233)}, []string{"u1@1234"}}}},
		{"newer than stored kept", []step{
			{[]event.Event{ev(event.Update, u("u1"), 1234)}, []string{"u1@1234"}},
			{[]event.Event{ev(event.Update, u("u1"), 1235)}, []string{"u1@1235"}},
		}},
		{"older than stored dropped", []step{
			{[]event.Event{ev(event.Update, u("u1"), 1234)}, []string{"u1@1234"}},
			{[]event.Event{ev(event.Update, u("u1"), 1233)}, []string{}},
		}},
		{"one per url in first-seen order, then only the new urls", []step{
			{[]event.Event{ev(event.Create, u("s1"), 1234), ev(event.Create, u("s2"), 1234), ev(event.Create, u("s3"), 1234), ev(event.Create, u("s1"), 1234)}, []string{"s1@1234", "s2@1234", "s3@1234"}},
			{[]event.Event{ev(event.Create, u("s1"), 1234), ev(event.Create, u("s4"), 1234), ev(event.Create, u("s5"), 1234), ev(event.Create, u("s2"), 1234)}, []string{"s4@1234", "s5@1234"}},
		}},
		{"newest per url, position of first keep", []step{
			{[]event.Event{ev(event.Update, u("u6"), 10), ev(event.Update, u("u7"), 5), ev(event.Update, u("u6"), 12), ev(event.Update, u("u6"), 11), ev(event.Update, u("u7"), 6)}, []string{"u6@12", "u7@6"}},
			{[]event.Event{ev(event.Update, u("u6"), 12)}, []string{}},
		}},
		{"position is the first time the url was kept, not first seen", []step{
			{[]event.Event{ev(event.Update, u("a"), 6)}, []string{"a@6"}},
			{[]event.Event{ev(event.Update, u("a"), 5), ev(event.Update, u("b"), 7), ev(event.Update, u("a"), 9)}, []string{"b@7", "a@9"}},
		}},
		{"equal t dropped whatever the type", []step{
			{[]event.Event{ev(event.Noop, u("u1"), 13), ev(event.Delete, u("u1"), 13)}, []string{"u1@13"}},
		}},
		{"noop advances the state", []step{
			{[]event.Event{ev(event.Noop, u("u1"), 20)}, []string{"u1@20"}},
			{[]event.Event{ev(event.Update, u("u1"), 19), ev(event.Update, u("u1"), 20)}, []string{}},
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFilter(t, c, reorder.Options{Namespace: fmt.Sprintf("ex%d", i), TTL: time.Hour})
			for j, s := range tc.steps {
				res := run(t, f, uint64(j+1), s.in...)
				if got := brief(res.Fresh); !slices.Equal(got, s.want) {
					t.Fatalf("step %d: fresh = %v, want %v", j, got, s.want)
				}
				if res.Stale != len(s.in)-len(s.want) {
					t.Fatalf("step %d: stale = %d, want %d", j, res.Stale, len(s.in)-len(s.want))
				}
			}
		})
	}
	t.Run("noop then delete at the same t keeps the noop itself", func(t *testing.T) {
		f := newFilter(t, c, reorder.Options{Namespace: "nd", TTL: time.Hour})
		res := run(t, f, 1, ev(event.Noop, u("u1"), 13), ev(event.Delete, u("u1"), 13))
		if len(res.Fresh) != 1 || res.Fresh[0].Type != event.Noop {
			t.Fatalf("fresh = %+v, want the noop", res.Fresh)
		}
	})
}

func TestStateIsJSONWithTTL(t *testing.T) {
	c := newRedis(t)
	ctx := context.Background()
	f := newFilter(t, c, reorder.Options{TTL: 90 * time.Second})
	run(t, f, 42, ev(event.Update, u("a"), 1700000000123), ev(event.Update, u("b%2Fc"), 7))
	key := reorder.StateKey("rm", u("a"))
	if want := dirty.KeysOf("rm", u("a")).State + u("a"); key != want || !strings.HasPrefix(key, "rm:dirtymap:{b") {
		t.Fatalf("state key %q, want %q", key, want)
	}
	if got := c.Get(ctx, key).Val(); got != `{"t":1700000000123,"seq":42}` {
		t.Fatalf("state = %q", got)
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl <= 89*time.Second || ttl > 90*time.Second {
		t.Fatalf("state TTL = %v, want about 90s", ttl)
	}
	if got := c.Get(ctx, reorder.StateKey("rm", u("b%2Fc"))).Val(); got != `{"t":7,"seq":42}` {
		t.Fatalf("state of a URL with %% = %q", got)
	}
	// A stale event does not touch the state or its TTL; a fresh one refreshes both.
	c.PExpire(ctx, key, 10*time.Second)
	run(t, f, 43, ev(event.Update, u("a"), 5))
	if ttl := c.PTTL(ctx, key).Val(); ttl > 10*time.Second {
		t.Fatalf("a stale event refreshed the TTL: %v", ttl)
	}
	run(t, f, 44, ev(event.Update, u("a"), 1700000000124))
	if ttl := c.PTTL(ctx, key).Val(); ttl <= 89*time.Second {
		t.Fatalf("a fresh event did not refresh the TTL: %v", ttl)
	}
	if got := c.Get(ctx, key).Val(); got != `{"t":1700000000124,"seq":44}` {
		t.Fatalf("state = %q", got)
	}
}

func TestStateWrittenByOthers(t *testing.T) {
	c := newRedis(t)
	ctx := context.Background()
	f := newFilter(t, c, reorder.Options{TTL: time.Hour})
	// Another language's writer, fields in another order and no seq: t is honoured.
	c.Set(ctx, reorder.StateKey("rm", u("a")), `{"seq": 3, "t": 100}`, 0)
	// Unreadable state (such as the gem's Ruby Marshal data) counts as unknown.
	c.Set(ctx, reorder.StateKey("rm", u("b")), "\x04\bo:\x16Routemaster", 0)
	res := run(t, f, 9, ev(event.Update, u("a"), 100), ev(event.Update, u("b"), 1))
	if got := brief(res.Fresh); !slices.Equal(got, []string{"b@1"}) {
		t.Fatalf("fresh = %v", got)
	}
}

// Whether a URL becomes dirty does not depend on how the bus batched its events: [update@5,
// noop@6] marks the URL in one batch as in two, and a redelivery of the batch marks nothing
// again.
func TestDirtyMarkingIndependentOfBatching(t *testing.T) {
	c := newRedis(t)
	ctx := context.Background()
	f := newFilter(t, c, reorder.Options{Namespace: "rm", TTL: time.Hour})
	one := run(t, f, 1, ev(event.Update, u("one"), 5), ev(event.Noop, u("one"), 6))
	if got := brief(one.Fresh); !slices.Equal(got, []string{"one@6"}) {
		t.Fatalf("fresh = %v, want the newest event (the noop) kept", got)
	}
	two := run(t, f, 2, ev(event.Update, u("two"), 5))
	two.NewlyDirty = append(two.NewlyDirty, run(t, f, 3, ev(event.Noop, u("two"), 6)).NewlyDirty...)
	if !slices.Equal(one.NewlyDirty, []string{u("one")}) || !slices.Equal(two.NewlyDirty, []string{u("two")}) {
		t.Fatalf("newly dirty: one batch %v, two batches %v; want the URL marked both ways", one.NewlyDirty, two.NewlyDirty)
	}
	if err := c.SRem(ctx, dirty.KeysOf("rm", u("one")).Items, u("one")).Err(); err != nil {
		t.Fatal(err)
	}
	again := run(t, f, 1, ev(event.Update, u("one"), 5), ev(event.Noop, u("one"), 6))
	if len(again.NewlyDirty) != 0 || len(again.Fresh) != 1 {
		t.Fatalf("redelivery: dirty %v fresh %v, want the noop replayed and nothing re-marked", again.NewlyDirty, again.Fresh)
	}
}

func TestDirtyMarking(t *testing.T) {
	c := newRedis(t)
	ctx := context.Background()
	f := newFilter(t, c, reorder.Options{TTL: time.Hour})
	res := run(t, f, 1,
		ev(event.Create, u("a"), 1), ev(event.Noop, u("n"), 1), ev(event.Update, u("a"), 2),
		ev(event.Create, u("b"), 1), ev(event.Update, u("c"), 1), ev(event.Noop, u("c"), 2))
	if !slices.Equal(res.NewlyDirty, []string{u("a"), u("b"), u("c")}) {
		t.Fatalf("newly dirty = %v, want a, b and c (a noop alone marks nothing; c's fresh update counts though a newer noop is kept)", res.NewlyDirty)
	}
	res = run(t, f, 2, ev(event.Update, u("a"), 3), ev(event.Delete, u("d"), 1), ev(event.Update, u("b"), 1))
	if !slices.Equal(res.NewlyDirty, []string{u("d")}) {
		t.Fatalf("newly dirty = %v, want only d (a was already dirty, b@1 is stale)", res.NewlyDirty)
	}
	got := dirtySet(t, c, "rm")
	if want := []string{u("a"), u("b"), u("c"), u("d")}; !slices.Equal(got, want) {
		t.Fatalf("dirty set = %v, want %v", got, want)
	}
	if ttl := c.TTL(ctx, dirty.KeysOf("rm", u("a")).Items).Val(); ttl != -1 {
		t.Fatalf("dirty set TTL = %v, want none", ttl)
	}
	// Marking off: state advances, the set is untouched.
	res, err := f.Run(ctx, 3, []event.Event{ev(event.Update, u("e"), 1)}, false)
	if err != nil || len(res.Fresh) != 1 || len(res.NewlyDirty) != 0 {
		t.Fatalf("res = %+v, %v", res, err)
	}
	if isDirty(c, u("e")) {
		t.Fatal("marked dirty with marking off")
	}
}

func TestReplay(t *testing.T) {
	c := newRedis(t)
	ctx := context.Background()
	f := newFilter(t, c, reorder.Options{TTL: time.Hour})
	batch := []event.Event{
		ev(event.Update, u("a"), 5), ev(event.Update, u("b"), 7), ev(event.Noop, u("c"), 3),
		ev(event.Delete, u("c"), 3), ev(event.Update, u("a"), 9), ev(event.Update, u("a"), 9),
	}
	first := run(t, f, 100, batch...)
	want := []string{"a@9", "b@7", "c@3"}
	if got := brief(first.Fresh); !slices.Equal(got, want) {
		t.Fatalf("first run fresh = %v, want %v", got, want)
	}
	if !slices.Equal(first.NewlyDirty, []string{u("a"), u("b")}) {
		t.Fatalf("first run dirty = %v", first.NewlyDirty)
	}
	// The sweeper hands b on meanwhile.
	c.SRem(ctx, dirty.KeysOf("rm", u("b")).Items, u("b"))

	// The replay hands on the same events; a URL's position may differ (the state does not
	// remember where in the batch the first run began keeping it), hence sorted.
	again := run(t, f, 100, batch...)
	got := brief(again.Fresh)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("replay fresh = %v, want %v", got, want)
	}
	for _, e := range again.Fresh {
		if e.URL == u("c") && e.Type != event.Noop {
			t.Fatalf("replay kept the delete of c instead of the noop the first run kept")
		}
	}
	if len(again.NewlyDirty) != 0 || isDirty(c, u("b")) {
		t.Fatalf("replay marked dirty again: %v", again.NewlyDirty)
	}

	// Another message moves a on; a redelivery of message 100 no longer carries a.
	run(t, f, 101, ev(event.Update, u("a"), 10))
	again = run(t, f, 100, batch...)
	if got := brief(again.Fresh); !slices.Equal(got, []string{"b@7", "c@3"}) {
		t.Fatalf("replay after a moved on: fresh = %v", got)
	}
	// Another message's sequence never replays.
	other := run(t, f, 102, batch...)
	if len(other.Fresh) != 0 {
		t.Fatalf("a different message got %v", brief(other.Fresh))
	}

	// One event per URL: a replay hands on the same events, a noop included, and marks nothing.
	single := []event.Event{ev(event.Update, u("s1"), 5), ev(event.Noop, u("s2"), 5), ev(event.Delete, u("s3"), 5)}
	once := run(t, f, 200, single...)
	if got := brief(once.Fresh); !slices.Equal(got, []string{"s1@5", "s2@5", "s3@5"}) || !slices.Equal(once.NewlyDirty, []string{u("s1"), u("s3")}) {
		t.Fatalf("single events: fresh %v, newly dirty %v", got, once.NewlyDirty)
	}
	c.SRem(ctx, dirty.KeysOf("rm", u("s1")).Items, u("s1"))
	twice := run(t, f, 200, single...)
	if got := brief(twice.Fresh); !slices.Equal(got, []string{"s1@5", "s2@5", "s3@5"}) || len(twice.NewlyDirty) != 0 || isDirty(c, u("s1")) {
		t.Fatalf("single events replayed: fresh %v, newly dirty %v", got, twice.NewlyDirty)
	}
	if other := run(t, f, 201, single...); len(other.Fresh) != 0 {
		t.Fatalf("single events, another message: %v", brief(other.Fresh))
	}
}

func TestInvalidBatch(t *testing.T) {
	c := newRedis(t)
	f := newFilter(t, c, reorder.Options{TTL: time.Hour})
	_, err := f.Run(context.Background(), 1, []event.Event{{Type: event.Update, T: 1}}, true)
	if err == nil {
		t.Fatal("no error for an event without a URL")
	}
	res, err := f.Run(context.Background(), 1, nil, true)
	if err != nil || len(res.Fresh) != 0 {
		t.Fatalf("empty batch: %+v, %v", res, err)
	}
}

func TestRedisDown(t *testing.T) {
	srv := draintest.StartRedis(t)
	c := srv.Client(t, 0)
	f := newFilter(t, c, reorder.Options{TTL: time.Hour})
	srv.Stop()
	if _, err := f.Run(context.Background(), 1, []event.Event{ev(event.Update, u("a"), 1)}, true); err == nil {
		t.Fatal("no error with Redis down")
	}
}

// TestConcurrentFilters races many filters over the same URLs with shuffled timestamps, each
// event delivered twice in different batches: the final state is the newest t per URL and no
// (url, t) is handed on twice.
func TestConcurrentFilters(t *testing.T) {
	c := newRedis(t)
	ctx := context.Background()
	const urls, perURL, workers, batchSize = 50, 40, 8, 25
	var all []event.Event
	maxT := map[string]int64{}
	for i := range urls {
		for j := range perURL {
			e := ev(event.Update, u(fmt.Sprint("r", i)), int64(1000+j))
			all = append(all, e, e) // every event twice
			maxT[e.URL] = max(maxT[e.URL], e.T)
		}
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var seq atomic.Uint64
	var mu sync.Mutex
	handedOn := map[string]int{}
	dirtied := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			f := newFilter(t, c, reorder.Options{TTL: time.Hour})
			for i := w * batchSize; i < len(all); i += workers * batchSize {
				res, err := f.Run(ctx, seq.Add(1), all[i:min(i+batchSize, len(all))], true)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, e := range res.Fresh {
					handedOn[fmt.Sprintf("%s@%d", e.URL, e.T)]++
				}
				for _, d := range res.NewlyDirty {
					dirtied[d]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for k, n := range handedOn {
		if n != 1 {
			t.Errorf("%s handed on %d times", k, n)
		}
	}
	for url, want := range maxT {
		st := c.Get(ctx, reorder.StateKey("rm", url)).Val()
		var got int64
		fmt.Sscanf(st, `{"t":%d,`, &got)
		if got != want {
			t.Errorf("%s: state %s, want t=%d", url, st, want)
		}
		if handedOn[fmt.Sprintf("%s@%d", url, want)] != 1 {
			t.Errorf("%s: newest event never handed on", url)
		}
		if dirtied[url] != 1 {
			t.Errorf("%s newly dirtied %d times, want once (nothing swept it)", url, dirtied[url])
		}
	}
}

// countHook counts the commands and pipelines a client sends: each is one round trip. The
// set-up of a new connection (HELLO, CLIENT SETINFO) is left out.
type countHook struct{ n atomic.Int64 }

func setup(cmd redis.Cmder) bool { return cmd.Name() == "hello" || cmd.Name() == "client" }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !setup(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !setup(cmds[0]) {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

func TestRoundTripsIndependentOfBatchSize(t *testing.T) {
	c := newRedis(t)
	hook := &countHook{}
	c.AddHook(hook)
	f := newFilter(t, c, reorder.Options{TTL: time.Hour})
	if err := f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 10, 100, 1000} {
		events := make([]event.Event, size)
		for i := range events {
			events[i] = ev(event.Update, u(fmt.Sprint("rt", i%(size/2+1))), int64(i))
		}
		before := hook.n.Load()
		run(t, f, uint64(size), events...)
		if got := hook.n.Load() - before; got != 1 {
			t.Errorf("batch of %d: %d round trips, want 1", size, got)
		}
	}
}

func TestNamespacesAreIsolated(t *testing.T) {
	c := newRedis(t)
	a, b := newFilter(t, c, reorder.Options{Namespace: "one", TTL: time.Hour}), newFilter(t, c, reorder.Options{Namespace: "two", TTL: time.Hour})
	run(t, a, 1, ev(event.Update, u("x"), 5))
	if res := run(t, b, 1, ev(event.Update, u("x"), 5)); len(res.Fresh) != 1 {
		t.Fatal("namespaces share state")
	}
}

// TestLargeBatch crosses the script's 1,000-key chunking of MGET, SMISMEMBER and SADD: its
// 2,500 URLs are all of one bucket, so one script call gets them all.
func TestLargeBatch(t *testing.T) {
	c := newRedis(t)
	f := newFilter(t, c, reorder.Options{TTL: time.Hour})
	var big []string
	for i := 0; len(big) < 2500; i++ {
		if url := u(fmt.Sprint("big", i)); dirty.Bucket(url) == 3 {
			big = append(big, url)
		}
	}
	events := make([]event.Event, 5000)
	for i := range events {
		events[i] = ev(event.Update, big[i%2500], int64(1+i/2500))
	}
	res := run(t, f, 1, events...)
	if len(res.Fresh) != 2500 || len(res.NewlyDirty) != 2500 || res.Stale != 2500 {
		t.Fatalf("fresh %d, dirty %d, stale %d", len(res.Fresh), len(res.NewlyDirty), res.Stale)
	}
	for i, e := range res.Fresh {
		if e.URL != big[i] || e.T != 2 {
			t.Fatalf("fresh[%d] = %s@%d", i, e.URL, e.T)
		}
	}
	if n := c.SCard(context.Background(), dirty.KeysFor("rm", 3).Items).Val(); n != 2500 {
		t.Fatalf("dirty set has %d URLs", n)
	}
	if res := run(t, f, 2, events...); len(res.Fresh) != 0 {
		t.Fatalf("second run: %d fresh", len(res.Fresh))
	}
	// One event per URL (the script's other path), over the same chunking.
	for i := range big {
		events[i] = ev(event.Update, big[i], 3)
	}
	c.Del(context.Background(), dirty.KeysFor("rm", 3).Items)
	res = run(t, f, 3, events[:2500]...)
	if len(res.Fresh) != 2500 || len(res.NewlyDirty) != 2500 || res.Fresh[2499].URL != big[2499] {
		t.Fatalf("one event per URL: fresh %d, dirty %d", len(res.Fresh), len(res.NewlyDirty))
	}
	if n := c.SCard(context.Background(), dirty.KeysFor("rm", 3).Items).Val(); n != 2500 {
		t.Fatalf("dirty set has %d URLs", n)
	}
}

// ReadState reads what the script wrote; a value the script cannot read is an error, not 0.
func TestReadState(t *testing.T) {
	c := newRedis(t)
	ctx := context.Background()
	f := newFilter(t, c, reorder.Options{TTL: time.Hour})
	if st, err := reorder.ReadState(ctx, c, "rm", u("a")); err != nil || st != (reorder.State{}) {
		t.Fatalf("never seen: %+v, %v", st, err)
	}
	if _, err := f.Run(ctx, 42, []event.Event{ev(event.Update, u("a"), 1559567869210)}, true); err != nil {
		t.Fatal(err)
	}
	if st, err := reorder.ReadState(ctx, c, "rm", u("a")); err != nil || st != (reorder.State{T: 1559567869210, Seq: 42}) {
		t.Fatalf("after Run: %+v, %v", st, err)
	}
	for _, raw := range []string{`123`, "\x04\bgarbage", `{"t":"x"}`, `{"t":1,"seq":-1}`} {
		c.Set(ctx, reorder.StateKey("rm", u("b")), raw, 0)
		if st, err := reorder.ReadState(ctx, c, "rm", u("b")); err == nil {
			t.Errorf("state %q read as %+v", raw, st)
		}
	}
}

// scripterOnly hides every method of a client but redis.Scripter's (no Pipeline).
type scripterOnly struct{ redis.Scripter }

// A batch over several buckets gives the same result through a client without pipelines (one
// call per bucket), and after the server lost its scripts (EVALSHA answers NOSCRIPT, the
// calls are sent again as EVAL).
func TestScriptCallsWithoutPipelineAndAfterFlush(t *testing.T) {
	c := newRedis(t)
	ctx := context.Background()
	batch := func(prefix string) []event.Event {
		var out []event.Event
		for i := range 40 {
			out = append(out, ev(event.Update, u(fmt.Sprint(prefix, i%20)), int64(1+i)))
		}
		return out
	}
	want := []string{}
	for i := range 20 {
		want = append(want, fmt.Sprintf("%s%d@%d", "p", i, 21+i))
	}
	check := func(name string, res reorder.Result) {
		t.Helper()
		var got []string
		for _, e := range res.Fresh {
			got = append(got, strings.Replace(brief([]event.Event{e})[0], "q", "p", 1))
		}
		if !slices.Equal(got, want) || len(res.NewlyDirty) != 20 || res.Stale != 20 {
			t.Fatalf("%s: fresh %v, %d newly dirty, %d stale", name, got, len(res.NewlyDirty), res.Stale)
		}
	}
	res, err := newFilter(t, scripterOnly{c}, reorder.Options{TTL: time.Hour}).Run(ctx, 1, batch("p"), true)
	if err != nil {
		t.Fatal(err)
	}
	check("without pipeline", res)
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	res, err = newFilter(t, c, reorder.Options{TTL: time.Hour}).Run(ctx, 2, batch("q"), true)
	if err != nil {
		t.Fatal(err)
	}
	check("after SCRIPT FLUSH", res)
}
