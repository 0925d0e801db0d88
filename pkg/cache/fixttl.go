package cache

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// FixTTLReport counts what FixTTL did.
type FixTTLReport struct {
	Scanned int // cache keys seen
	Fixed   int // keys that had no TTL and got one
}

// FixTTLOptions configure FixTTL. The zero value scans 100 keys per SCAN call and reports no
// progress.
type FixTTLOptions struct {
	// Batch is how many keys one SCAN call asks for (default 100).
	Batch int
	// Progress, when set, is called after each SCAN batch with the totals so far (over every
	// master of a Redis Cluster together), from one goroutine at a time; a long run on a
	// large cache reports through it.
	Progress func(FixTTLReport)
}

// FixTTL is the gem's FixCacheTTL task: it SCANs every "<ns>:cache:*" key (o.Batch keys per
// SCAN call), and sets the cache expiry on those without a TTL. Keys that have a TTL and keys
// outside the cache are left alone. On Redis Cluster it walks every master.
func (c *Cache) FixTTL(ctx context.Context, o FixTTLOptions) (FixTTLReport, error) {
	if o.Batch <= 0 {
		o.Batch = 100
	}
	var (
		mu    sync.Mutex
		total FixTTLReport
	)
	add := func(scanned, fixed int) {
		mu.Lock()
		defer mu.Unlock()
		total.Scanned += scanned
		total.Fixed += fixed
		if o.Progress != nil {
			o.Progress(total)
		}
	}
	cc, ok := c.rdb.(*redis.ClusterClient)
	if !ok {
		err := c.fixTTLNode(ctx, c.rdb, o.Batch, add)
		return total, err
	}
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		return c.fixTTLNode(ctx, node, o.Batch, add)
	})
	mu.Lock()
	defer mu.Unlock()
	return total, err
}

// fixTTLNode runs FixTTL on one node, calling add with each SCAN batch's counts.
func (c *Cache) fixTTLNode(ctx context.Context, node redis.UniversalClient, batch int, add func(scanned, fixed int)) error {
	pattern := scanPattern(c.cfg.Namespace)
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, pattern, int64(batch)).Result()
		if err != nil {
			return fmt.Errorf("cache: fix-ttl scan: %w", redisErr(err))
		}
		if len(keys) > 0 {
			fixed := 0
			ttls := make([]*redis.DurationCmd, len(keys))
			if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, k := range keys {
					ttls[i] = p.PTTL(ctx, k)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("cache: fix-ttl ttl: %w", redisErr(err))
			}
			var missing []string
			for i, cmd := range ttls {
				// -1 (no TTL) comes back as a negative duration; -2 (gone) too, and EXPIRE on a
				// missing key is a no-op, as in the gem.
				if cmd.Val() < 0 {
					missing = append(missing, keys[i])
				}
			}
			if len(missing) > 0 {
				exps := make([]*redis.BoolCmd, len(missing))
				if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
					for i, k := range missing {
						exps[i] = p.PExpire(ctx, k, c.cfg.Expiry)
					}
					return nil
				}); err != nil {
					return fmt.Errorf("cache: fix-ttl expire: %w", redisErr(err))
				}
				for _, e := range exps {
					if e.Val() {
						fixed++
					}
				}
			}
			add(len(keys), fixed)
		}
		cursor = next
		if cursor == 0 {
			return nil
		}
	}
}
