package dirty_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

var ctx = context.Background()

func newRedis(t *testing.T) *redis.Client {
	t.Helper()
	return draintest.StartRedis(t).Client(t, 0)
}

// newMap returns the map of o on c.
func newMap(t *testing.T, c redis.UniversalClient, o dirty.Options) *dirty.Map {
	t.Helper()
	m, err := dirty.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNewOptions: the zero Options are the gem's namespace and DefaultLeaseTTL; bad options
// and a nil client are refused.
func TestNewOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	if newMap(t, c, dirty.Options{}) == nil || dirty.DefaultNamespace != "rm" {
		t.Errorf("the zero Options: namespace %q", dirty.DefaultNamespace)
	}
	if _, err := dirty.New(nil, dirty.Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	for _, o := range []dirty.Options{{Namespace: "{x}"}, {LeaseTTL: -time.Second}, {LeaseTTL: time.Microsecond}} {
		if _, err := dirty.New(c, o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

// bucket is the bucket of every URL u returns. Most tests pin down what one bucket does (a
// lease holds URLs of one bucket); TestBuckets and the cluster tests spread URLs over all.
const bucket = 5

// keys are the keys of the tests' bucket in namespace rm.
var keys = dirty.KeysFor("rm", bucket)

var bucketURLs = func() []string {
	var out []string
	for i := 0; len(out) < 6000; i++ {
		if url := fmt.Sprintf("https://example.com/r/%d", i); dirty.Bucket(url) == bucket {
			out = append(out, url)
		}
	}
	return out
}()

// u returns the n-th URL (n < 6000) of bucket bucket.
func u(n int) string { return bucketURLs[n] }

func mark(t *testing.T, m *dirty.Map, urls ...string) {
	t.Helper()
	for _, url := range urls {
		if _, err := m.Mark(ctx, url); err != nil {
			t.Fatal(err)
		}
	}
}

func count(t *testing.T, m *dirty.Map) int64 {
	t.Helper()
	n, err := m.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func members(t *testing.T, c *redis.Client) []string {
	t.Helper()
	got := c.SMembers(ctx, keys.Items).Val()
	slices.Sort(got)
	return got
}

// leaseEventually polls Lease until it returns URLs (an expired lease comes back).
func leaseEventually(t *testing.T, m *dirty.Map, n int) ([]string, dirty.Token) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		urls, tok, err := m.Lease(ctx, n, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(urls) > 0 {
			return urls, tok
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no lease came back within 10s")
	return nil, ""
}

func TestMark(t *testing.T) {
	c := newRedis(t)
	var hooked []string
	m := newMap(t, c, dirty.Options{OnDirty: func(url string) { hooked = append(hooked, url) }})
	for i, want := range []bool{true, false} {
		got, err := m.Mark(ctx, u(1))
		if err != nil || got != want {
			t.Fatalf("mark #%d = %v, %v; want %v", i+1, got, err, want)
		}
	}
	if !slices.Equal(hooked, []string{u(1)}) {
		t.Fatalf("OnDirty saw %v, want one call", hooked)
	}
	if got := members(t, c); !slices.Equal(got, []string{u(1)}) {
		t.Fatalf("items = %v", got)
	}
	if ttl := c.TTL(ctx, keys.Items).Val(); ttl != -1 {
		t.Fatalf("dirty set TTL = %v, want none", ttl)
	}
	// Other namespaces do not see it.
	if n := count(t, newMap(t, c, dirty.Options{Namespace: "other"})); n != 0 {
		t.Fatalf("namespace other counts %d", n)
	}
}

func TestCountAndList(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	for i := range 10 {
		mark(t, m, u(i))
	}
	urls, _, err := m.Lease(ctx, 3, time.Minute)
	if err != nil || len(urls) != 3 {
		t.Fatalf("lease = %v, %v", urls, err)
	}
	mark(t, m, urls[0]) // marked again while leased: still one URL
	if n := count(t, m); n != 10 {
		t.Fatalf("count = %d, want 10 (leased URLs are still dirty)", n)
	}
	all, err := m.List(ctx, 0)
	if err != nil || len(all) != 10 {
		t.Fatalf("list all = %d URLs, %v", len(all), err)
	}
	some, err := m.List(ctx, 4)
	if err != nil || len(some) != 4 {
		t.Fatalf("list 4 = %v, %v", some, err)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(all)))) != 10 {
		t.Fatalf("list repeats URLs: %v", all)
	}
}

func TestSweepLimit(t *testing.T) {
	for _, tc := range []struct {
		limit, want int
	}{{0, 7}, {-1, 7}, {3, 3}, {7, 7}, {100, 7}} {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			c := newRedis(t)
			m := newMap(t, c, dirty.Options{})
			for i := range 7 {
				mark(t, m, u(i))
			}
			var got []string
			err := m.Sweep(ctx, tc.limit, func(url string) (bool, error) {
				got = append(got, url)
				return true, nil
			})
			if err != nil || len(got) != tc.want {
				t.Fatalf("swept %d, %v; want %d", len(got), err, tc.want)
			}
			if n := count(t, m); n != int64(7-tc.want) {
				t.Fatalf("left %d, want %d", n, 7-tc.want)
			}
			if c.ZCard(ctx, keys.Leases).Val() != 0 {
				t.Fatal("leases left behind")
			}
		})
	}
}

func TestSweepPutsBackFalseErrorsAndPanics(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	for i := range 250 { // more than one lease chunk
		mark(t, m, u(i))
	}
	refused := map[string]bool{}
	for i := 1; i < 250; i += 2 {
		refused[u(i)] = true
	}
	seen := map[string]int{}
	err := m.Sweep(ctx, 0, func(url string) (bool, error) {
		seen[url]++
		return !refused[url], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 250 {
		t.Fatalf("yielded %d distinct URLs, want 250", len(seen))
	}
	for url, k := range seen {
		if k != 1 {
			t.Fatalf("%s yielded %d times in one sweep", url, k)
		}
	}
	if n := count(t, m); n != 125 {
		t.Fatalf("left %d, want the 125 refused", n)
	}
	if c.SCard(ctx, keys.Items).Val() != 125 || c.ZCard(ctx, keys.Leases).Val() != 0 {
		t.Fatal("refused URLs are not back in the dirty set")
	}

	// An error ends the sweep; the URL and the unswept rest stay dirty.
	boom := errors.New("boom")
	calls := 0
	err = m.Sweep(ctx, 0, func(string) (bool, error) {
		calls++
		if calls == 3 {
			return true, boom
		}
		return true, nil
	})
	if !errors.Is(err, boom) || calls != 3 {
		t.Fatalf("sweep = %v after %d calls; want boom after 3", err, calls)
	}
	if n := count(t, m); n != 123 {
		t.Fatalf("left %d, want 123 (2 removed, the failed one back)", n)
	}

	// A panic is returned as ErrPanicked and puts the URL back.
	err = m.Sweep(ctx, 0, func(string) (bool, error) { panic("kaboom") })
	if !errors.Is(err, dirty.ErrPanicked) {
		t.Fatalf("sweep after panic = %v", err)
	}
	if n := count(t, m); n != 123 || c.ZCard(ctx, keys.Leases).Val() != 0 {
		t.Fatalf("after panic count %d, leases %d", n, c.ZCard(ctx, keys.Leases).Val())
	}

	// ErrStop ends the sweep without an error, honouring the result.
	calls = 0
	err = m.Sweep(ctx, 0, func(string) (bool, error) {
		calls++
		return true, dirty.ErrStop
	})
	if err != nil || calls != 1 || count(t, m) != 122 {
		t.Fatalf("stop: err %v, calls %d, left %d", err, calls, count(t, m))
	}
}

func TestSweepOne(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	mark(t, m, u(1), u(2))
	yes := func(string) (bool, error) { return true, nil }
	no := func(string) (bool, error) { return false, nil }

	// Not dirty: fn runs anyway (the gem), nothing removed.
	ran := false
	removed, err := m.SweepOne(ctx, u(9), func(string) (bool, error) { ran = true; return true, nil })
	if !ran || removed || err != nil {
		t.Fatalf("sweep one of a clean URL: ran %v removed %v err %v", ran, removed, err)
	}
	if removed, err := m.SweepOne(ctx, u(1), no); removed || err != nil || count(t, m) != 2 {
		t.Fatalf("false result removed it: %v %v", removed, err)
	}
	if removed, err := m.SweepOne(ctx, u(1), yes); !removed || err != nil || count(t, m) != 1 {
		t.Fatalf("true result: removed %v err %v count %d", removed, err, count(t, m))
	}
	if _, err := m.SweepOne(ctx, u(2), func(string) (bool, error) { panic("x") }); !errors.Is(err, dirty.ErrPanicked) {
		t.Fatalf("panic = %v", err)
	}
	if got := members(t, c); !slices.Equal(got, []string{u(2)}) {
		t.Fatalf("after panic items = %v", got)
	}
	// Leased by someone else: fn does not run.
	if _, _, err := m.Lease(ctx, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	ran = false
	if _, err := m.SweepOne(ctx, u(2), func(string) (bool, error) { ran = true; return true, nil }); !errors.Is(err, dirty.ErrLeased) || ran {
		t.Fatalf("leased URL: err %v, ran %v", err, ran)
	}
}

// A sweeper killed between Lease and Complete loses nothing: the lease expires back into the
// map, the whole batch is leased again under the same batch id, and the dead holder's token no
// longer completes anything.
func TestKilledHolderLosesNothing(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	for i := range 5 {
		mark(t, m, u(i))
	}
	urls, dead, err := m.Lease(ctx, 10, 200*time.Millisecond)
	if err != nil || len(urls) != 5 || dead.Generation() != 0 {
		t.Fatalf("lease = %v %q %v", urls, dead, err)
	}
	if n := count(t, m); n != 5 {
		t.Fatalf("count during lease = %d", n)
	}
	if again, _, _ := m.Lease(ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("leased twice: %v", again)
	}
	// The holder "dies" here. After expiry the batch comes back whole.
	back, tok := leaseEventually(t, m, 10)
	if !slices.Equal(slices.Sorted(slices.Values(back)), slices.Sorted(slices.Values(urls))) {
		t.Fatalf("re-leased %v, want %v", back, urls)
	}
	if tok.Batch() != dead.Batch() || tok.Generation() != 1 {
		t.Fatalf("token %q, dead %q: want same batch, generation 1", tok, dead)
	}
	if done, err := m.Complete(ctx, dead, urls...); err != nil || len(done) != 0 {
		t.Fatalf("the dead holder completed %v, %v", done, err)
	}
	if released, _ := m.Release(ctx, dead, urls...); len(released) != 0 {
		t.Fatalf("the dead holder released %v", released)
	}
	if done, err := m.Complete(ctx, tok, back...); err != nil || len(done) != 5 {
		t.Fatalf("complete = %v, %v", done, err)
	}
	if n := count(t, m); n != 0 {
		t.Fatalf("left %d", n)
	}
	if keys := c.Keys(ctx, "*").Val(); len(keys) != 0 {
		t.Fatalf("keys left behind: %v", keys)
	}
}

// A batch partly completed before its holder died comes back URL by URL.
func TestPartlyCompletedBatchReturnsURLs(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	mark(t, m, u(1), u(2), u(3))
	urls, dead, _ := m.Lease(ctx, 3, 150*time.Millisecond)
	if _, err := m.Complete(ctx, dead, urls[0]); err != nil {
		t.Fatal(err)
	}
	back, tok := leaseEventually(t, m, 10)
	if tok.Batch() == dead.Batch() || len(back) != 2 || slices.Contains(back, urls[0]) {
		t.Fatalf("re-leased %v as %q (dead %q)", back, tok, dead)
	}
}

func TestRemarkDuringLease(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	mark(t, m, u(1))
	urls, tok, _ := m.Lease(ctx, 10, time.Minute)
	if !slices.Equal(urls, []string{u(1)}) {
		t.Fatalf("lease = %v", urls)
	}
	if newly, _ := m.Mark(ctx, u(1)); !newly {
		t.Fatal("a URL changed after it was leased must be newly dirty")
	}
	if again, _, _ := m.Lease(ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("a URL marked again while leased was leased twice: %v", again)
	}
	if n := count(t, m); n != 1 {
		t.Fatalf("count = %d", n)
	}
	if done, _ := m.Complete(ctx, tok, u(1)); len(done) != 1 {
		t.Fatal("complete failed")
	}
	// Dirtied again during the lease: handed on once more.
	again, _, _ := m.Lease(ctx, 10, time.Minute)
	if !slices.Equal(again, []string{u(1)}) {
		t.Fatalf("after complete lease = %v, want the URL again", again)
	}
}

func TestReleaseAndRenew(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	mark(t, m, u(1), u(2))
	urls, tok, _ := m.Lease(ctx, 2, 300*time.Millisecond)
	if back, err := m.Release(ctx, tok, urls[0]); err != nil || len(back) != 1 {
		t.Fatalf("release = %v %v", back, err)
	}
	if got := members(t, c); !slices.Equal(got, []string{urls[0]}) {
		t.Fatalf("items after release = %v", got)
	}
	if held, err := m.Renew(ctx, tok, time.Minute, urls...); err != nil || !slices.Equal(held, urls[1:]) {
		t.Fatalf("renew = %v %v", held, err)
	}
	time.Sleep(400 * time.Millisecond) // past the original lease: the renewal must hold
	got, _, _ := m.Lease(ctx, 10, time.Minute)
	if !slices.Equal(got, urls[:1]) {
		t.Fatalf("lease after renew = %v, want only the released %v", got, urls[:1])
	}
	if d, ok, err := m.NextExpiry(ctx); err != nil || !ok || d <= 50*time.Second {
		t.Fatalf("next expiry = %v %v %v", d, ok, err)
	}
}

// Concurrent holders never hold one URL at once, and together they take every URL once.
func TestConcurrentLeasers(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	const total = 5000
	pipe := c.Pipeline()
	for i := range total {
		pipe.SAdd(ctx, keys.Items, u(i))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	holding := map[string]bool{}
	handed := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				urls, tok, err := m.Lease(ctx, 37, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				if len(urls) == 0 {
					return
				}
				mu.Lock()
				for _, url := range urls {
					if holding[url] {
						errs <- fmt.Errorf("%s held twice at once", url)
					}
					holding[url] = true
					handed[url]++
				}
				mu.Unlock()
				mu.Lock()
				for _, url := range urls {
					delete(holding, url)
				}
				mu.Unlock()
				if _, err := m.Complete(ctx, tok, urls...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(handed) != total {
		t.Fatalf("handed %d URLs, want %d", len(handed), total)
	}
	for url, n := range handed {
		if n != 1 {
			t.Fatalf("%s handed %d times", url, n)
		}
	}
	if n := count(t, m); n != 0 {
		t.Fatalf("left %d", n)
	}
}

// Two Sweeps at once on one map (the gem's API): every URL is yielded once in total.
func TestConcurrentSweeps(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	for i := range 600 {
		mark(t, m, u(i))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			err := m.Sweep(ctx, 0, func(url string) (bool, error) {
				mu.Lock()
				seen[url]++
				mu.Unlock()
				return true, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(seen) != 600 {
		t.Fatalf("yielded %d URLs", len(seen))
	}
	for url, n := range seen {
		if n != 1 {
			t.Fatalf("%s yielded %d times", url, n)
		}
	}
}

func TestBadArguments(t *testing.T) {
	m := newMap(t, newRedis(t), dirty.Options{})
	if _, _, err := m.Lease(ctx, 0, time.Minute); err == nil {
		t.Fatal("n = 0 accepted")
	}
	if _, _, err := m.Lease(ctx, 1, 0); err == nil {
		t.Fatal("ttl = 0 accepted")
	}
}

func TestToken(t *testing.T) {
	tok := dirty.Token("abc.def.12")
	if tok.Batch() != "abc.def" || tok.Generation() != 12 {
		t.Fatalf("batch %q gen %d", tok.Batch(), tok.Generation())
	}
}

func TestRedisDown(t *testing.T) {
	r := draintest.StartRedis(t)
	m := newMap(t, r.Client(t, 0), dirty.Options{})
	r.Stop()
	if _, err := m.Mark(ctx, u(1)); err == nil {
		t.Fatal("mark with Redis down succeeded")
	}
	if err := m.Sweep(ctx, 0, func(string) (bool, error) { return true, nil }); err == nil {
		t.Fatal("sweep with Redis down succeeded")
	}
}

// waitAllExpired polls until every lease in the map has expired by the Redis clock.
func waitAllExpired(t *testing.T, c *redis.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		now, err := c.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		last := c.ZRangeWithScores(ctx, keys.Leases, -1, -1).Val()
		if len(last) == 0 || int64(last[0].Score) < now.UnixMilli() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("leases did not expire within 10s")
}

// Two holders died: each batch is taken over whole under its own batch id; taking over one
// never breaks the other up (its URLs are not leased under a new id while its record is whole).
func TestTwoDeadBatchesEachTakenOverWhole(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	mark(t, m, u(1), u(2), u(3))
	a, ta, err := m.Lease(ctx, 10, 100*time.Millisecond)
	if err != nil || len(a) != 3 {
		t.Fatalf("lease a = %v %v", a, err)
	}
	mark(t, m, u(4), u(5), u(6))
	b, tb, err := m.Lease(ctx, 10, 100*time.Millisecond)
	if err != nil || len(b) != 3 {
		t.Fatalf("lease b = %v %v", b, err)
	}
	mark(t, m, u(7)) // free and dirty: taken over batches come first, it comes last
	waitAllExpired(t, c)

	dead := map[string][]string{ta.Batch(): slices.Sorted(slices.Values(a)), tb.Batch(): slices.Sorted(slices.Values(b))}
	for i := range 2 {
		got, tok, err := m.Lease(ctx, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := dead[tok.Batch()]
		if !ok || tok.Generation() != 1 || !slices.Equal(slices.Sorted(slices.Values(got)), want) {
			t.Fatalf("lease %d = %v as %q; want one dead batch whole, generation 1 (dead: %v)", i, got, tok, dead)
		}
		delete(dead, tok.Batch())
		if items := members(t, c); !slices.Equal(items, []string{u(7)}) {
			t.Fatalf("after take-over %d the dirty set is %v: a whole batch was broken up", i, items)
		}
	}
	got, tok, _ := m.Lease(ctx, 10, time.Minute)
	if !slices.Equal(got, []string{u(7)}) || tok.Generation() != 0 || tok.Batch() == ta.Batch() || tok.Batch() == tb.Batch() {
		t.Fatalf("third lease = %v as %q, want the free URL under a new id", got, tok)
	}
}

// A dead batch larger than the caller's n cannot be taken over whole: it returns URL by URL
// (so no URL stays stuck when every sweeper asks for fewer).
func TestDeadBatchLargerThanNReturnsURLs(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	mark(t, m, u(1), u(2), u(3))
	_, dead, _ := m.Lease(ctx, 10, 100*time.Millisecond)
	waitAllExpired(t, c)
	got, tok, err := m.Lease(ctx, 2, time.Minute)
	if err != nil || len(got) != 2 || tok.Batch() == dead.Batch() {
		t.Fatalf("lease = %v as %q, %v (dead %q)", got, tok, err, dead)
	}
}

// A sweep function slower than the lease TTL allows for a chunk: the sweep renews its leases,
// so another leaser never gets a URL the sweep still holds (not even one whose fn returned
// false, held until the sweep ends), and nothing is reported lost.
func TestSlowSweepKeepsItsLeases(t *testing.T) {
	c := newRedis(t)
	const ttl = 300 * time.Millisecond
	m := newMap(t, c, dirty.Options{LeaseTTL: ttl})
	other := newMap(t, c, dirty.Options{})
	for i := range 8 {
		mark(t, m, u(i))
	}
	sweepDone := make(chan error, 1)
	var mu sync.Mutex
	yielded := map[string]int{}
	started := make(chan struct{})
	var once sync.Once
	var finished atomic.Int32 // callbacks that returned; after the 8th the sweep gives u(0) back
	go func() {
		sweepDone <- m.Sweep(ctx, 0, func(url string) (bool, error) {
			once.Do(func() { close(started) })
			mu.Lock()
			yielded[url]++
			mu.Unlock()
			time.Sleep(ttl / 3) // 8 URLs × ttl/3 ≈ 2.7 × ttl
			finished.Add(1)
			return url != u(0), nil
		})
	}()
	<-started // the sweep holds all 8 (one chunk) from now until it ends
	var stolen []string
	for running := true; running; {
		select {
		case err := <-sweepDone:
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
			running = false
		default:
			if finished.Load() == 8 {
				// The sweep is giving the refused URL back: from here on another leaser
				// may legitimately get it, so stop probing and wait for the end.
				if err := <-sweepDone; err != nil {
					t.Fatalf("sweep: %v", err)
				}
				running = false
				continue
			}
			got, tok, err := other.Lease(ctx, 100, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 0 {
				_, _ = other.Release(ctx, tok, got...)
				if finished.Load() == 8 && slices.Equal(got, []string{u(0)}) {
					continue // the sweep ended between the check above and this lease
				}
				stolen = append(stolen, got...)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(stolen) > 0 {
		t.Fatalf("another leaser got %v while the sweep held them", stolen)
	}
	if len(yielded) != 8 {
		t.Fatalf("yielded %v", yielded)
	}
	for url, n := range yielded {
		if n != 1 {
			t.Fatalf("%s yielded %d times", url, n)
		}
	}
	// The URL fn refused was given back when the sweep ended, and only then.
	if got, _, _ := other.Lease(ctx, 100, time.Minute); !slices.Equal(got, []string{u(0)}) {
		t.Fatalf("after the sweep = %v, want the refused URL", got)
	}
}

// Leases lost while the sweep held them (the process stalled past the TTL and another leaser
// took the URLs) are not handed to fn, are not taken back, and are reported.
func TestSweepReportsLostLeases(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	other := newMap(t, c, dirty.Options{})
	mark(t, m, u(1), u(2), u(3))
	var calls int
	var taken []string
	var takenTok dirty.Token
	err := m.Sweep(ctx, 0, func(url string) (bool, error) {
		calls++
		if calls == 1 {
			// Stall past the lease: make every lease expire now, and let another leaser in.
			for _, v := range []string{u(1), u(2), u(3)} {
				c.ZAdd(ctx, keys.Leases, redis.Z{Score: 1, Member: v})
			}
			var err error
			if taken, takenTok, err = other.Lease(ctx, 10, time.Minute); err != nil || len(taken) != 3 {
				t.Errorf("the other leaser got %v, %v", taken, err)
			}
		}
		return true, nil
	})
	if !errors.Is(err, dirty.ErrLeaseLost) {
		t.Fatalf("sweep error = %v, want ErrLeaseLost", err)
	}
	if calls != 1 {
		t.Fatalf("fn called %d times; URLs another leaser holds must not be handed to fn", calls)
	}
	if done, err := other.Complete(ctx, takenTok, taken...); err != nil || len(done) != 3 {
		t.Fatalf("the new holder completed %v, %v: the sweep took its leases back", done, err)
	}
	if n := count(t, m); n != 0 {
		t.Fatalf("left %d", n)
	}
}

// Status reads a URL's place in the map without changing it: marked, leased, both, neither.
func TestStatus(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	status := func(url string) dirty.URLStatus {
		t.Helper()
		s, err := m.Status(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := status(u(1)); s.Dirty() || s.Marked || s.Leased || !s.LeaseExpiry.IsZero() {
		t.Fatalf("unknown URL: %+v", s)
	}
	mark(t, m, u(1))
	if s := status(u(1)); !s.Dirty() || !s.Marked || s.Leased {
		t.Fatalf("marked URL: %+v", s)
	}
	before := time.Now()
	urls, _, err := m.Lease(ctx, 1, time.Minute)
	if err != nil || len(urls) != 1 {
		t.Fatalf("lease = %v, %v", urls, err)
	}
	s := status(u(1))
	if !s.Dirty() || s.Marked || !s.Leased {
		t.Fatalf("leased URL: %+v", s)
	}
	// The expiry is by the Redis clock, which is this machine's.
	if d := s.LeaseExpiry.Sub(before); d < 50*time.Second || d > 70*time.Second {
		t.Fatalf("lease expiry %v is %v after the lease, want about a minute", s.LeaseExpiry, d)
	}
	mark(t, m, u(1)) // changed again while a sweeper holds it
	if s := status(u(1)); !s.Marked || !s.Leased {
		t.Fatalf("re-marked leased URL: %+v", s)
	}
	if n := count(t, m); n != 1 {
		t.Fatalf("Status changed the map: count %d", n)
	}
	c.Set(ctx, dirty.KeysOf("rm", u(2)).Items, "not a set", 0)
	if _, err := m.Status(ctx, u(2)); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("status of a broken map: %v", err)
	}
}
