package dirty_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

// crc16 is Redis Cluster's key hash (CRC16-XMODEM), to check the bucket tags' slots here;
// the cluster tests check them against CLUSTER KEYSLOT.
func crc16(s string) int {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc)
}

// The key layout and the bucket function are read by apps in other languages: pinned here.
func TestKeyLayout(t *testing.T) {
	k := dirty.KeysFor("rm", 7)
	want := dirty.Keys{
		Items: "rm:dirtymap:{b07.23}:items", Leases: "rm:dirtymap:{b07.23}:leases", Owners: "rm:dirtymap:{b07.23}:owners",
		Batch: "rm:dirtymap:{b07.23}:lease:", State: "rm:dirtymap:{b07.23}:state:",
	}
	if k != want {
		t.Fatalf("KeysFor(rm, 7) = %+v, want %+v", k, want)
	}
	if old := dirty.LegacyKeys("rm"); old.Items != "{rm}:dirtymap:items" || old.State != "{rm}:dirtymap:state:" || old.Batch != "{rm}:dirtymap:lease:" {
		t.Fatalf("LegacyKeys = %+v", old)
	}
	// XXH64 (seed 0) mod 16 of the URL's bytes: XXH64("") = 0xef46db3751d8e999,
	// XXH64("https://example.com/orders/1") = 0xbb426057d62aebd2.
	for url, b := range map[string]int{
		"https://example.com/orders/1": 2, "https://example.com/orders/2": 15, "": 9, "https://x/%7B{}": 13,
	} {
		if got := dirty.Bucket(url); got != b {
			t.Errorf("Bucket(%q) = %d, want %d", url, got, b)
		}
	}
	if dirty.KeysOf("ns", "https://example.com/orders/2") != dirty.KeysFor("ns", 15) {
		t.Error("KeysOf is not KeysFor of the URL's bucket")
	}
	// Bucket i's tag hashes into the i-th sixteenth of the slot space.
	for b := range dirty.Buckets {
		slot := crc16(dirty.BucketTag(b)) % 16384
		if slot < b*1024 || slot >= (b+1)*1024 {
			t.Errorf("tag %q of bucket %d is in slot %d", dirty.BucketTag(b), b, slot)
		}
	}
}

// spread returns n URLs and how many fall in each bucket.
func spread(n int) ([]string, [dirty.Buckets]int) {
	var per [dirty.Buckets]int
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://example.com/s/%d", i)
		per[dirty.Bucket(urls[i])]++
	}
	return urls, per
}

func TestMapSpreadsOverBuckets(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	urls, per := spread(2000)
	mark(t, m, urls...)
	for b := range dirty.Buckets {
		items := c.SMembers(ctx, dirty.KeysFor("rm", b).Items).Val()
		if len(items) != per[b] || per[b] == 0 {
			t.Fatalf("bucket %d holds %d URLs, want %d", b, len(items), per[b])
		}
		for _, url := range items {
			if dirty.Bucket(url) != b {
				t.Fatalf("%s is in bucket %d, its bucket is %d", url, b, dirty.Bucket(url))
			}
		}
	}
	if n := count(t, m); n != 2000 {
		t.Fatalf("count = %d", n)
	}
	if all, err := m.List(ctx, 0); err != nil || len(all) != 2000 {
		t.Fatalf("list = %d URLs, %v", len(all), err)
	}
	if some, err := m.List(ctx, 300); err != nil || len(some) != 300 || len(slices.Compact(slices.Sorted(slices.Values(some)))) != 300 {
		t.Fatalf("list 300 = %d URLs, %v", len(some), err)
	}

	// A lease takes URLs of one bucket, the fullest.
	fullest := 0
	for b := range per {
		if per[b] > per[fullest] {
			fullest = b
		}
	}
	leased, tok, err := m.Lease(ctx, 1000, time.Minute)
	if err != nil || len(leased) != per[fullest] {
		t.Fatalf("lease = %d URLs, %v; want the %d of the fullest bucket %d", len(leased), err, per[fullest], fullest)
	}
	for _, url := range leased {
		if dirty.Bucket(url) != fullest {
			t.Fatalf("lease of bucket %d holds %s of bucket %d", fullest, url, dirty.Bucket(url))
		}
	}
	if n, err := m.Leased(ctx); err != nil || n != int64(len(leased)) {
		t.Fatalf("leased = %d, %v", n, err)
	}
	if n := count(t, m); n != 2000 {
		t.Fatalf("count with a lease = %d", n)
	}
	// Renew, Complete and Release group URLs by bucket: a URL of another bucket (not held)
	// and the order of the rest are as given.
	other := urls[slices.IndexFunc(urls, func(u string) bool { return dirty.Bucket(u) != fullest })]
	ask := append([]string{other}, leased[:5]...)
	if held, err := m.Renew(ctx, tok, time.Minute, ask...); err != nil || !slices.Equal(held, leased[:5]) {
		t.Fatalf("renew = %v, %v; want %v", held, err, leased[:5])
	}
	if back, err := m.Release(ctx, tok, ask...); err != nil || !slices.Equal(back, leased[:5]) {
		t.Fatalf("release = %v, %v", back, err)
	}
	if done, err := m.Complete(ctx, tok, append(ask, leased[5:]...)...); err != nil || !slices.Equal(done, leased[5:]) {
		t.Fatalf("complete = %d URLs, %v", len(done), err)
	}
	if n := count(t, m); n != int64(2000-len(leased)+5) {
		t.Fatalf("count after complete = %d", n)
	}

	// A sweep empties every bucket, each URL once.
	seen := map[string]int{}
	if err := m.Sweep(ctx, 0, func(url string) (bool, error) { seen[url]++; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2000-len(leased)+5 {
		t.Fatalf("swept %d URLs", len(seen))
	}
	for url, k := range seen {
		if k != 1 {
			t.Fatalf("%s swept %d times", url, k)
		}
	}
	if n := count(t, m); n != 0 {
		t.Fatalf("count after sweep = %d", n)
	}
	if keys := c.Keys(ctx, "*").Val(); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}

// A dead holder's batch is taken over before any bucket's free URLs, however many.
func TestTakeOverComesFirstAcrossBuckets(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	mark(t, m, u(1), u(2))
	dead, deadTok, err := m.Lease(ctx, 10, 100*time.Millisecond)
	if err != nil || len(dead) != 2 {
		t.Fatalf("lease = %v, %v", dead, err)
	}
	urls, _ := spread(500)
	mark(t, m, urls...)
	time.Sleep(150 * time.Millisecond)
	got, tok, err := m.Lease(ctx, 10, time.Minute)
	if err != nil || tok.Batch() != deadTok.Batch() || tok.Generation() != 1 || !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(dead))) {
		t.Fatalf("lease = %v %q %v, want the dead batch %v %q taken over", got, tok, err, dead, deadTok)
	}
}

// NextExpiry is the earliest lease of any bucket.
func TestNextExpiryAcrossBuckets(t *testing.T) {
	c := newRedis(t)
	m := newMap(t, c, dirty.Options{})
	urls, _ := spread(100)
	mark(t, m, urls...)
	if _, ok, err := m.NextExpiry(ctx); ok || err != nil {
		t.Fatalf("nothing leased: ok %v, %v", ok, err)
	}
	if _, _, err := m.Lease(ctx, 100, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Lease(ctx, 100, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if d, ok, err := m.NextExpiry(ctx); err != nil || !ok || d > 30*time.Second || d < 25*time.Second {
		t.Fatalf("next expiry = %v %v %v, want the 30s lease of the second bucket", d, ok, err)
	}
}

// Every operation runs on Redis Cluster: each script's keys are in one slot (a CROSSSLOT error
// would fail it), and a dead holder's batch is taken over whole there too.
func TestMapOnCluster(t *testing.T) {
	c := draintest.StartRedisCluster(t, 3, 0).Client(t)
	m := newMap(t, c, dirty.Options{})
	urls, _ := spread(300)
	mark(t, m, urls...)
	if n := count(t, m); n != 300 {
		t.Fatalf("count = %d", n)
	}
	if all, err := m.List(ctx, 0); err != nil || len(all) != 300 {
		t.Fatalf("list = %d, %v", len(all), err)
	}
	if some, err := m.List(ctx, 50); err != nil || len(some) != 50 {
		t.Fatalf("list 50 = %d, %v", len(some), err)
	}
	dead, deadTok, err := m.Lease(ctx, 100, 100*time.Millisecond)
	if err != nil || len(dead) == 0 {
		t.Fatalf("lease = %v, %v", dead, err)
	}
	if n, err := m.Leased(ctx); err != nil || n != int64(len(dead)) {
		t.Fatalf("leased = %d, %v", n, err)
	}
	if d, ok, err := m.NextExpiry(ctx); err != nil || !ok || d > 100*time.Millisecond {
		t.Fatalf("next expiry = %v %v %v", d, ok, err)
	}
	time.Sleep(150 * time.Millisecond)
	back, tok, err := m.Lease(ctx, 100, time.Minute)
	if err != nil || tok.Batch() != deadTok.Batch() || tok.Generation() != 1 || len(back) != len(dead) {
		t.Fatalf("take-over = %d URLs %q %v, want the %d of %q", len(back), tok, err, len(dead), deadTok)
	}
	if held, err := m.Renew(ctx, tok, time.Minute, back...); err != nil || len(held) != len(back) {
		t.Fatalf("renew = %d, %v", len(held), err)
	}
	if given, err := m.Release(ctx, tok, back[0]); err != nil || len(given) != 1 {
		t.Fatalf("release = %v, %v", given, err)
	}
	if done, err := m.Complete(ctx, tok, back[1:]...); err != nil || len(done) != len(back)-1 {
		t.Fatalf("complete = %d, %v", len(done), err)
	}
	if ok, err := m.SweepOne(ctx, back[0], func(string) (bool, error) { return true, nil }); err != nil || !ok {
		t.Fatalf("sweep one = %v, %v", ok, err)
	}
	swept := 0
	if err := m.Sweep(ctx, 0, func(string) (bool, error) { swept++; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if swept != 300-len(back) || count(t, m) != 0 {
		t.Fatalf("swept %d, %d left", swept, count(t, m))
	}
}
