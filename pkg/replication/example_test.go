package replication_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/replication"
)

// A client whose writes wait for one replica: confirmed writes are on the replica when the
// command returns; without a replica they fail with ErrTooFewReplicas.
func ExampleWait() {
	s := draintest.NewScope()
	defer s.Close()
	master := draintest.StartRedis(s, draintest.RedisOptions{Args: []string{"--repl-diskless-sync-delay", "0"}})
	_, port, _ := net.SplitHostPort(master.Addr())
	replica := draintest.StartRedis(s, draintest.RedisOptions{Args: []string{"--replicaof", "127.0.0.1", port}})

	rdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
	defer rdb.Close()
	if err := replication.Wait(rdb, replication.Options{Replicas: 1}); err != nil {
		panic(err)
	}
	ctx := context.Background()
	for rdb.Set(ctx, "greeting", "hello", 0).Err() != nil {
		// the replica is still syncing
	}
	fmt.Println(replica.Client(s, 0).Get(ctx, "greeting").Val())

	replica.Stop()
	err := rdb.Set(ctx, "greeting", "bye", 0).Err()
	fmt.Println(errors.Is(err, replication.ErrTooFewReplicas))
	// Output:
	// hello
	// true
}
