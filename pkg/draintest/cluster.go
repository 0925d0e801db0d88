package draintest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a private Redis Cluster: redis-server processes from PATH in cluster mode on
// free loopback ports (each with its own cluster bus port and directory, no persistence),
// joined by redis-cli --cluster create.
type RedisCluster struct {
	nodes []*clusterNode
}

type clusterNode struct {
	port, bus int
	dir       string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// StartRedisCluster starts a Redis Cluster of masters masters, each with replicasPerMaster
// replicas, and waits until every node reports cluster_state:ok. The nodes are killed at
// cleanup. It takes a few seconds; without redis-server or redis-cli the test fails with the
// command that installs them.
func StartRedisCluster(t T, masters, replicasPerMaster int) *RedisCluster {
	t.Helper()
	c, err := LaunchRedisCluster(t.TempDir(), masters, replicasPerMaster)
	if err != nil {
		t.Fatalf("draintest: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// LaunchRedisCluster is StartRedisCluster for programs (benchmarks, local stacks): it keeps
// the nodes' directories under dir and returns an error instead of failing a test. The caller
// must Close the cluster, also after using it only briefly. Redis Cluster needs at least 3
// masters.
func LaunchRedisCluster(dir string, masters, replicasPerMaster int) (*RedisCluster, error) {
	if masters < 3 || replicasPerMaster < 0 {
		return nil, fmt.Errorf("redis cluster: want at least 3 masters and no negative replica count, got %d and %d", masters, replicasPerMaster)
	}
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s is needed on PATH (apt-get install -y redis-server)", bin)
		}
	}
	c := &RedisCluster{}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	for range masters * (1 + replicasPerMaster) {
		n, err := startClusterNode(dir)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w:\n%s", err, out)
	}
	if err := c.waitOK(ctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

func startClusterNode(dir string) (*clusterNode, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	bus, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &clusterNode{port: port, bus: bus, dir: filepath.Join(dir, "node-"+strconv.Itoa(port))}
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(n.dir, "redis.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command("redis-server",
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", n.dir,
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(n.dir, "nodes.conf"),
		"--cluster-node-timeout", "2000", "--cluster-port", strconv.Itoa(bus),
		"--repl-diskless-sync-delay", "0",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(n.exited) }()
	rdb := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return n, nil
		}
		select {
		case <-n.exited:
			n.cmd = nil
			out, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
			return nil, fmt.Errorf("redis-server on %s exited at start:\n%s", n.addr(), out)
		default:
		}
		if time.Now().After(deadline) {
			n.kill()
			return nil, fmt.Errorf("redis-server on %s does not answer PING: %w", n.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOK waits until every node says cluster_state:ok with all 16384 slots served, and every
// replica has synchronised with its master (a replica that never did cannot take over).
func (c *RedisCluster) waitOK(ctx context.Context) error {
	for _, n := range c.nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1})
		err := waitFor(ctx, func() (string, error) { return rdb.ClusterInfo(ctx).Result() }, func(info string) bool {
			return strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384")
		})
		if err == nil {
			err = waitFor(ctx, func() (string, error) { return rdb.Info(ctx, "replication").Result() }, func(info string) bool {
				return strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")
			})
		}
		_ = rdb.Close()
		if err != nil {
			return fmt.Errorf("redis cluster: node %s not ready in time: %w", n.addr(), err)
		}
	}
	return nil
}

// waitFor polls read until ready accepts what it returned, or ctx ends.
func waitFor(ctx context.Context, read func() (string, error), ready func(string) bool) error {
	for {
		info, err := read()
		if err == nil && ready(info) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("last said:\n%s", info)
			}
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (n *clusterNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

func (n *clusterNode) kill() {
	if n.cmd != nil {
		_ = n.cmd.Process.Kill()
		<-n.exited
		n.cmd = nil
	}
}

// Addrs returns host:port of every node, in start order (the masters redis-cli chose first).
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr()
	}
	return out
}

// URL returns the drain's setting for the cluster with namespace ns ("" for the default):
// every node as a seed, redis://host:port/0[/ns], comma-separated (see config.ParseRedisURL).
func (c *RedisCluster) URL(ns string) string {
	urls := make([]string, len(c.nodes))
	for i, a := range c.Addrs() {
		urls[i] = "redis://" + a + "/0"
		if ns != "" {
			urls[i] += "/" + ns
		}
	}
	return strings.Join(urls, ",")
}

// Client returns a cluster client seeded with every node, closed at cleanup. It reloads the
// slot map every second (go-redis's default is a minute), so a test sees a failover promptly.
func (c *RedisCluster) Client(t T) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ClusterStateReloadInterval: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Kill kills the node at addr (host:port, from Addrs) with SIGKILL, like a crash. Its replica,
// if it has one, takes its slots over after the cluster node timeout (2 s).
func (c *RedisCluster) Kill(addr string) error {
	for _, n := range c.nodes {
		if n.addr() == addr {
			n.kill()
			return nil
		}
	}
	return fmt.Errorf("redis cluster: no node %s in %v", addr, c.Addrs())
}

// Close kills every node. Safe to call twice.
func (c *RedisCluster) Close() {
	for _, n := range c.nodes {
		n.kill()
	}
}

// MasterKeys returns how many keys each master holds (DBSIZE), by master address.
func MasterKeys(ctx context.Context, rdb *redis.ClusterClient) (map[string]int64, error) {
	var mu sync.Mutex
	out := map[string]int64{}
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		if err != nil {
			return fmt.Errorf("DBSIZE on %s: %w", m.Options().Addr, err)
		}
		mu.Lock()
		out[m.Options().Addr] = n
		mu.Unlock()
		return nil
	})
	return out, err
}
