package replication_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/replication"
)

// BenchmarkWrite measures one SET round trip to a master with a replica on loopback, without
// and with Wait (Replicas 1): the difference is what DRAIN_REDIS_WAIT_REPLICAS=1 adds to a
// write.
func BenchmarkWrite(b *testing.B) {
	for _, replicas := range []int{0, 1} {
		b.Run("replicas="+strconv.Itoa(replicas), func(b *testing.B) {
			master, _ := startPair(b)
			rdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
			b.Cleanup(func() { _ = rdb.Close() })
			if err := replication.Wait(rdb, replication.Options{Replicas: replicas}); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
