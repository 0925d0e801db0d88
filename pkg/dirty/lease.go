package dirty

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease takes up to n dirty URLs out of the map for ttl, atomically, and returns them with
// the lease's token. Nobody else can lease them until the lease ends: Complete (handed on),
// Release (given back) or expiry. Expired leases are taken back first, at the next Lease call
// of any process. A batch that expired whole (its holder died between leasing and finishing)
// is leased again whole, with the same Token.Batch, so a hand-off keyed on the batch id and
// content repeats the dead holder's message exactly; one call takes over one such batch and
// leaves the others whole for the next calls (then fewer than n URLs may come back although
// more are dirty). Only expired URLs whose batch is no longer whole (partly completed or given
// back, or larger than n) return to the map one by one. No URLs and an empty token mean nothing
// is dirty and free.
func (m *Map) Lease(ctx context.Context, n int, ttl time.Duration) ([]string, Token, error) {
	if n <= 0 {
		return nil, "", fmt.Errorf("dirty: lease: n must be positive, got %d", n)
	}
	if ttl < time.Millisecond {
		return nil, "", fmt.Errorf("dirty: lease: ttl %v is below 1ms", ttl)
	}
	res, err := leaseScript.Run(ctx, m.rdb,
		[]string{m.keys.Items, m.keys.Leases, m.keys.Owners},
		n, ttl.Milliseconds(), newBatchID(), m.keys.Batch, recordTTL.Milliseconds(), reclaimMax).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("dirty: lease: %w", err)
	}
	if len(res) == 0 {
		return nil, "", nil
	}
	return res[1:], Token(res[0]), nil
}

// Complete ends the lease of urls after their hand-off succeeded: they leave the map, except
// those marked again since they were leased, which stay dirty and will be leased again. It
// returns the URLs whose lease it ended; a URL missing from the result was no longer held
// under token (its lease expired and another holder took it).
func (m *Map) Complete(ctx context.Context, token Token, urls ...string) ([]string, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	res, err := completeScript.Run(ctx, m.rdb,
		[]string{m.keys.Leases, m.keys.Owners, m.keys.Batch + token.Batch()},
		args(string(token), urls)...).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dirty: complete: %w", err)
	}
	return res, nil
}

// Release gives leased urls back to the map without handing them on; another sweep can take
// them at once. It returns the URLs given back (those still held under token).
func (m *Map) Release(ctx context.Context, token Token, urls ...string) ([]string, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	res, err := releaseScript.Run(ctx, m.rdb,
		[]string{m.keys.Items, m.keys.Leases, m.keys.Owners, m.keys.Batch + token.Batch()},
		args(string(token), urls)...).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dirty: release: %w", err)
	}
	return res, nil
}

// Renew extends the lease of urls to ttl from now and returns those still held under token.
// A holder whose hand-off takes long (a webhook being retried) renews well before expiry.
func (m *Map) Renew(ctx context.Context, token Token, ttl time.Duration, urls ...string) ([]string, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	a := append([]any{string(token), ttl.Milliseconds(), recordTTL.Milliseconds()}, strs(urls)...)
	res, err := renewScript.Run(ctx, m.rdb,
		[]string{m.keys.Leases, m.keys.Owners, m.keys.Batch + token.Batch()}, a...).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dirty: renew: %w", err)
	}
	return res, nil
}

// NextExpiry returns how long until the earliest running lease expires (by the Redis clock),
// and false when nothing is leased. A sweeper that finds leases it cannot take waits this long
// to take back a dead holder's URLs promptly.
func (m *Map) NextExpiry(ctx context.Context) (time.Duration, bool, error) {
	ms, err := nextExpiryScript.Run(ctx, m.rdb, []string{m.keys.Leases}).Int64()
	if err != nil {
		return 0, false, fmt.Errorf("dirty: next expiry: %w", err)
	}
	if ms < 0 {
		return 0, false, nil
	}
	return time.Duration(ms) * time.Millisecond, true, nil
}

func args(first string, urls []string) []any {
	return append([]any{first}, strs(urls)...)
}

func strs(urls []string) []any {
	a := make([]any, len(urls))
	for i, u := range urls {
		a[i] = u
	}
	return a
}
