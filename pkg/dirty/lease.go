package dirty

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/internal/scriptpipe"
)

// Lease takes up to n dirty URLs of one bucket out of the map for ttl, atomically, and returns
// them with the lease's token. Nobody else can lease them until the lease ends: Complete
// (handed on), Release (given back) or expiry.
//
// A lease holds URLs of one bucket only, so that taking it over stays one atomic script: with
// D dirty URLs spread over the Buckets buckets, a lease holds at most about D/Buckets of them
// (fewer than n may come back although more are dirty). Lease first looks at every bucket (one
// script per bucket, in one pipeline) and then leases from the first bucket that has anything:
// buckets with expired leases first, then the one with the most free URLs (among equals, a
// different one first on each call).
//
// Expired leases are taken back first, at the next Lease call of any process that picks their
// bucket. A batch that expired whole (its holder died between leasing and finishing) is leased
// again whole, with the same Token.Batch, so a hand-off keyed on the batch id and content
// repeats the dead holder's message exactly; one call takes over one such batch and leaves the
// others whole for the next calls. Only expired URLs whose batch is no longer whole (partly
// completed or given back, or larger than n) return to the map one by one. No URLs and an
// empty token mean nothing is dirty and free.
//
// Cost: two round trips (one per node touched on Redis Cluster, in parallel, then one).
func (m *Map) Lease(ctx context.Context, n int, ttl time.Duration) ([]string, Token, error) {
	if n <= 0 {
		return nil, "", fmt.Errorf("dirty: lease: n must be positive, got %d", n)
	}
	if ttl < time.Millisecond {
		return nil, "", fmt.Errorf("dirty: lease: ttl %v is below 1ms", ttl)
	}
	st, err := m.status(ctx, reclaimMax)
	if err != nil {
		return nil, "", fmt.Errorf("dirty: lease: %w", err)
	}
	for _, b := range m.leaseOrder(st) {
		k := m.keys(b)
		id := newBatchID()
		keys := []string{k.Items, k.Leases, k.Owners, k.Batch + id}
		args := []any{n, ttl.Milliseconds(), id, recordTTL.Milliseconds(), reclaimMax}
		for _, dead := range st[b].dead {
			keys = append(keys, k.Batch+dead)
			args = append(args, dead)
		}
		res, err := leaseScript.Run(ctx, m.rdb, keys, args...).StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, "", fmt.Errorf("dirty: lease: %w", err)
		}
		if len(res) > 0 {
			return res[1:], Token(res[0]), nil
		}
	}
	return nil, "", nil
}

// bucketStatus is what status.lua found in one bucket.
type bucketStatus struct {
	free int64    // URLs in the dirty set
	wait int64    // ms until the earliest lease expires: 0 when one has, -1 when none is leased
	dead []string // batch ids of expired leases (when asked for)
}

// status runs status.lua on every bucket in one pipeline, examining up to examine expired
// leases per bucket.
func (m *Map) status(ctx context.Context, examine int) ([Buckets]bucketStatus, error) {
	var out [Buckets]bucketStatus
	calls := make([]scriptpipe.Call, Buckets)
	for b := range calls {
		k := m.keys(b)
		calls[b] = scriptpipe.Call{Keys: []string{k.Items, k.Leases, k.Owners}, Args: []any{examine, batchesMax}}
	}
	for b, r := range scriptpipe.Run(ctx, m.rdb, statusScript, calls) {
		res, err := r.Slice()
		if err != nil {
			return out, err
		}
		if len(res) < 2 {
			return out, fmt.Errorf("unexpected status reply %v", res)
		}
		out[b].free, _ = res[0].(int64)
		out[b].wait, _ = res[1].(int64)
		for _, v := range res[2:] {
			if id, ok := v.(string); ok {
				out[b].dead = append(out[b].dead, id)
			}
		}
	}
	return out, nil
}

// leaseOrder returns the buckets worth a lease call, best first: those with expired leases
// (a dead holder's batch should be taken over within its lease, before the message it may
// have published leaves the duplicate window), then by free URLs, most first, so batches are
// as full as they can be and a bucket that grows faster than the others is swept sooner. Ties
// start at a bucket that rotates from call to call.
func (m *Map) leaseOrder(st [Buckets]bucketStatus) []int {
	start := int(m.turn.Add(1) % Buckets)
	var order []int
	for b := range Buckets {
		if st[b].free > 0 || st[b].wait == 0 {
			order = append(order, b)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		ea, eb := st[a].wait == 0, st[b].wait == 0
		switch {
		case ea != eb:
			if ea {
				return -1
			}
			return 1
		case st[a].free != st[b].free:
			return cmp.Compare(st[b].free, st[a].free)
		}
		return cmp.Compare((a-start+Buckets)%Buckets, (b-start+Buckets)%Buckets)
	})
	return order
}

// byBucket groups urls by bucket, each group in the order given.
func byBucket(urls []string) map[int][]string {
	out := map[int][]string{}
	for _, u := range urls {
		b := Bucket(u)
		out[b] = append(out[b], u)
	}
	return out
}

// perBucket runs s once per bucket of urls, in one pipeline, with keys(k) (the bucket's keys,
// the batch record last) and the arguments head followed by the bucket's URLs. It returns the
// URLs the scripts returned, in the order of urls.
func (m *Map) perBucket(ctx context.Context, s *redis.Script, urls []string, keys func(Keys) []string, head ...any) ([]string, error) {
	groups := byBucket(urls)
	calls := make([]scriptpipe.Call, 0, len(groups))
	for b, group := range groups {
		args := append(slices.Clip(head), strs(group)...)
		calls = append(calls, scriptpipe.Call{Keys: keys(m.keys(b)), Args: args})
	}
	got := map[string]bool{}
	for _, r := range scriptpipe.Run(ctx, m.rdb, s, calls) {
		res, err := r.StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		for _, u := range res {
			got[u] = true
		}
	}
	out := make([]string, 0, len(got))
	for _, u := range urls {
		if got[u] {
			out = append(out, u)
			delete(got, u)
		}
	}
	return out, nil
}

// Complete ends the lease of urls after their hand-off succeeded: they leave the map, except
// those marked again since they were leased, which stay dirty and will be leased again. It
// returns the URLs whose lease it ended, in the order given; a URL missing from the result was
// no longer held under token (its lease expired and another holder took it). One script per
// bucket of urls (one for a batch from Lease), in one pipeline.
func (m *Map) Complete(ctx context.Context, token Token, urls ...string) ([]string, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	res, err := m.perBucket(ctx, completeScript, urls, func(k Keys) []string {
		return []string{k.Leases, k.Owners, k.Batch + token.Batch()}
	}, string(token))
	if err != nil {
		return nil, fmt.Errorf("dirty: complete: %w", err)
	}
	return res, nil
}

// Release gives leased urls back to the map without handing them on; another sweep can take
// them at once. It returns the URLs given back (those still held under token), in the order
// given.
func (m *Map) Release(ctx context.Context, token Token, urls ...string) ([]string, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	res, err := m.perBucket(ctx, releaseScript, urls, func(k Keys) []string {
		return []string{k.Items, k.Leases, k.Owners, k.Batch + token.Batch()}
	}, string(token))
	if err != nil {
		return nil, fmt.Errorf("dirty: release: %w", err)
	}
	return res, nil
}

// Renew extends the lease of urls to ttl from now and returns those still held under token,
// in the order given. A holder whose hand-off takes long (a webhook being retried) renews well
// before expiry.
func (m *Map) Renew(ctx context.Context, token Token, ttl time.Duration, urls ...string) ([]string, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	res, err := m.perBucket(ctx, renewScript, urls, func(k Keys) []string {
		return []string{k.Leases, k.Owners, k.Batch + token.Batch()}
	}, string(token), ttl.Milliseconds(), recordTTL.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("dirty: renew: %w", err)
	}
	return res, nil
}

// NextExpiry returns how long until the earliest running lease of any bucket expires (by the
// clock of the Redis node holding it), and false when nothing is leased. A sweeper that finds
// leases it cannot take waits this long to take back a dead holder's URLs promptly. One script
// per bucket, in one pipeline.
func (m *Map) NextExpiry(ctx context.Context) (time.Duration, bool, error) {
	st, err := m.status(ctx, 0)
	if err != nil {
		return 0, false, fmt.Errorf("dirty: next expiry: %w", err)
	}
	next := int64(-1)
	for _, s := range st {
		if s.wait >= 0 && (next < 0 || s.wait < next) {
			next = s.wait
		}
	}
	if next < 0 {
		return 0, false, nil
	}
	return time.Duration(next) * time.Millisecond, true, nil
}

func strs(urls []string) []any {
	a := make([]any, len(urls))
	for i, u := range urls {
		a[i] = u
	}
	return a
}
