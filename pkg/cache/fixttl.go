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

// FixTTL is the gem's FixCacheTTL task: it SCANs every "<ns>:cache:*" key (batch keys per
// SCAN call; 100 when ≤ 0), and sets the cache expiry on those without a TTL. Keys that have
// a TTL and keys outside the cache are left alone. On Redis Cluster it walks every master.
func (c *Cache) FixTTL(ctx context.Context, batch int) (FixTTLReport, error) {
	if batch <= 0 {
		batch = 100
	}
	cc, ok := c.rdb.(*redis.ClusterClient)
	if !ok {
		return c.fixTTLNode(ctx, c.rdb, batch)
	}
	var (
		mu    sync.Mutex
		total FixTTLReport
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		r, err := c.fixTTLNode(ctx, node, batch)
		mu.Lock()
		total.Scanned += r.Scanned
		total.Fixed += r.Fixed
		mu.Unlock()
		return err
	})
	return total, err
}

func (c *Cache) fixTTLNode(ctx context.Context, node redis.UniversalClient, batch int) (FixTTLReport, error) {
	var rep FixTTLReport
	pattern := scanPattern(c.cfg.Namespace)
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, pattern, int64(batch)).Result()
		if err != nil {
			return rep, fmt.Errorf("cache: fix-ttl scan: %w", redisErr(err))
		}
		if len(keys) > 0 {
			rep.Scanned += len(keys)
			ttls := make([]*redis.DurationCmd, len(keys))
			if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, k := range keys {
					ttls[i] = p.PTTL(ctx, k)
				}
				return nil
			}); err != nil {
				return rep, fmt.Errorf("cache: fix-ttl ttl: %w", redisErr(err))
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
					return rep, fmt.Errorf("cache: fix-ttl expire: %w", redisErr(err))
				}
				for _, e := range exps {
					if e.Val() {
						rep.Fixed++
					}
				}
			}
		}
		cursor = next
		if cursor == 0 {
			return rep, nil
		}
	}
}
