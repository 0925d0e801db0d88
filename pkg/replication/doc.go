// Package replication keeps the drain's Redis writes through a master's failure. Redis
// replicates asynchronously: a master that dies after acknowledging a write, before a replica
// copied it, loses the write, and a stage that already acked its JetStream message then loses
// a change. Wait makes every write wait (Redis WAIT, on the write's own connection and node)
// until enough replicas confirmed it, so a stage acks only what survives a failover; a write
// confirmed by too few replicas fails with ErrTooFewReplicas, which stream.IsRedisOutage
// counts as an outage (the message is retried, never dead-lettered). ReloadOnError makes a
// Redis Cluster client learn a promoted replica as soon as the old master stops answering.
//
//	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds})
//	if err := replication.Wait(rdb, replication.Options{Replicas: 1}); err != nil { ... }
//	replication.ReloadOnError(rdb)
//	f, _ := reorder.New(rdb, reorder.Options{}) // every script it runs now waits for 1 replica
//
// pkg/config installs both on every client it builds (DRAIN_REDIS_WAIT_REPLICAS,
// DRAIN_REDIS_WAIT_TIMEOUT). See docs/operations.md for what it costs.
package replication
