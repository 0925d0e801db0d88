package dirty

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

// An expired batch whose record the caller did not pass (it expired after the caller's look
// at the bucket) is left alone, neither taken over nor broken up, for a later Lease.
func TestLeaseLeavesUndeclaredBatches(t *testing.T) {
	ctx := context.Background()
	c := draintest.StartRedis(t).Client(t, 0)
	m, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for i := 0; len(urls) < 3; i++ {
		if url := fmt.Sprintf("https://example.com/%d", i); Bucket(url) == 4 {
			urls = append(urls, url)
			if _, err := m.Mark(ctx, url); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, dead, err := m.Lease(ctx, 10, 50*time.Millisecond)
	if err != nil || len(got) != 3 {
		t.Fatalf("lease = %v, %v", got, err)
	}
	time.Sleep(100 * time.Millisecond)
	k := m.keys(4)
	res, err := leaseScript.Run(ctx, c, []string{k.Items, k.Leases, k.Owners, k.Batch + "new"},
		10, 60000, "new", recordTTL.Milliseconds(), reclaimMax).StringSlice()
	if err != nil || len(res) != 0 {
		t.Fatalf("lease without the dead batch's record = %v, %v; want nothing", res, err)
	}
	if n := c.ZCard(ctx, k.Leases).Val(); n != 3 || c.SCard(ctx, k.Items).Val() != 0 {
		t.Fatalf("the undeclared batch was touched: %d leased, %d free", n, c.SCard(ctx, k.Items).Val())
	}
	again, tok, err := m.Lease(ctx, 10, time.Minute)
	if err != nil || len(again) != 3 || tok.Batch() != dead.Batch() || tok.Generation() != 1 {
		t.Fatalf("next lease = %v %q %v, want the batch %q taken over whole", again, tok, err, dead)
	}
}
