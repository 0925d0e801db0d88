package draintest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisFailoverCluster is a private Redis Cluster built of restartable Redis nodes (each a
// *Redis, with its own Stop, Start and Kill), for failover tests: kill a master, wait for its
// replica's promotion, start the old master again as a replica. StartRedisCluster is the
// lighter cluster for tests that only need the slot spread.
type RedisFailoverCluster struct {
	t     T
	Nodes []*Redis // every node, masters first as created (roles change on failover)
}

// StartRedisFailoverCluster starts a Redis Cluster of masters masters with replicas replicas each,
// every node a redis-server from PATH on a random port, with cluster-node-timeout nodeTimeout
// (how long a master may be unreachable before its replica is promoted), and waits until the
// cluster serves every slot. It needs redis-cli on PATH. Nodes are killed at cleanup.
func StartRedisFailoverCluster(t T, masters, replicas int, nodeTimeout time.Duration) *RedisFailoverCluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("draintest: redis-cli is needed on PATH (apt-get install -y redis-tools)")
	}
	c := &RedisFailoverCluster{t: t}
	args := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10), "--repl-diskless-sync-delay", "0"}
	create := []string{"--cluster", "create"}
	for range masters * (1 + replicas) {
		n := StartRedis(t, RedisOptions{Args: args})
		c.Nodes = append(c.Nodes, n)
		create = append(create, n.Addr())
	}
	create = append(create, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", create...).CombinedOutput(); err != nil {
		t.Fatalf("draintest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(30 * time.Second)
	return c
}

// URL is the drain-style seed list of every node (database 0, namespace ns; "" for the
// default), as ROUTEMASTER_DRAIN_REDIS takes a Redis Cluster.
func (c *RedisFailoverCluster) URL(ns string) string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL(0, ns)
	}
	return strings.Join(urls, ",")
}

// Addrs is the host:port of every node.
func (c *RedisFailoverCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Masters returns the nodes that are masters now, as the live nodes report it.
func (c *RedisFailoverCluster) Masters() []*Redis {
	var out []*Redis
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
		info, err := cl.Info(context.Background(), "replication").Result()
		_ = cl.Close()
		if err == nil && strings.Contains(info, "role:master") {
			out = append(out, n)
		}
	}
	return out
}

// WaitHealthy waits, up to timeout, until every live node reports cluster_state:ok and every
// master that has live replicas has them connected, failing the test otherwise.
func (c *RedisFailoverCluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !c.healthy() {
		if time.Now().After(deadline) {
			c.t.Fatalf("draintest: Redis Cluster not healthy after %v", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *RedisFailoverCluster) healthy() bool {
	ctx := context.Background()
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
		info, err := cl.ClusterInfo(ctx).Result()
		repl, rerr := cl.Info(ctx, "replication").Result()
		_ = cl.Close()
		if err != nil || rerr != nil || !strings.Contains(info, "cluster_state:ok") {
			return false
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return false
		}
	}
	return true
}
