package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// servers are the NATS and Redis a run drives and breaks: one process of each (single), or a
// 3-node NATS cluster and a Redis Cluster of 3 masters with a replica each (clustered).
type servers interface {
	natsURL() string
	redisURL(namespace string) string
	// redisClient is a client for the checks, closed by the caller.
	redisClient() redis.UniversalClient
	// env is what the services need on top of the common settings.
	env() []string
	// faults is the run's schedule of breakages, by the share of batches acknowledged.
	faults() []fault
	String() string
	close()
}

// fault is one breakage of NATS or Redis: begin breaks it and returns what repairs it, which
// the run calls down later (the SIGKILLs of services go on meanwhile).
type fault struct {
	at    float64 // share of the batches acknowledged when it starts
	nats  bool    // NATS (else Redis)
	down  time.Duration
	begin func() (what string, repair func() error, err error)
}

// single is one embedded nats-server with a file store and one redis-server with AOF (fsync
// always): NATS is restarted a third of the way through, Redis SIGKILLed two thirds through
// and started again from its AOF after Options.RedisOutage.
type single struct {
	ns     *stack.NATS
	rs     *stack.Redis
	outage time.Duration
}

func startSingle(o Options) (*single, error) {
	natsPort, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	redisPort, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	ns, err := stack.StartNATS(natsPort, filepath.Join(o.Work, "nats"))
	if err != nil {
		return nil, err
	}
	rs, err := stack.StartRedis(redisPort, filepath.Join(o.Work, "redis"), "always")
	if err != nil {
		ns.Stop()
		return nil, err
	}
	return &single{ns: ns, rs: rs, outage: o.RedisOutage}, nil
}

func (s *single) natsURL() string                  { return s.ns.URL() }
func (s *single) redisURL(namespace string) string { return s.rs.URL(0, namespace) }
func (s *single) redisClient() redis.UniversalClient {
	return redis.NewClient(&redis.Options{Addr: s.rs.Addr()})
}
func (s *single) env() []string { return nil }
func (s *single) close()        { s.rs.Kill(); s.ns.Stop() }
func (s *single) String() string {
	return fmt.Sprintf("NATS %s, Redis %s (AOF, fsync always)", s.ns.URL(), s.rs.Addr())
}

func (s *single) faults() []fault {
	return []fault{
		{at: 1.0 / 3, nats: true, down: 500 * time.Millisecond, begin: func() (string, func() error, error) {
			s.ns.Stop()
			return "stopped nats-server", s.ns.Start, nil
		}},
		{at: 2.0 / 3, down: s.outage, begin: func() (string, func() error, error) {
			s.rs.Kill()
			return "SIGKILLed redis-server (started again from its AOF)", s.rs.Start, nil
		}},
	}
}

// clustered is 3 nats-server processes joined by routes, with R3 streams, and a Redis Cluster
// of 3 masters with one replica each (cluster-node-timeout 1 s), the services waiting for one
// replica's confirmation of every write (DRAIN_REDIS_WAIT_REPLICAS=1). Its faults SIGKILL the
// events stream's leader, then another NATS node, and two Redis masters in turn, each started
// again once the cluster has moved on (a killed master rejoins as its successor's replica).
type clustered struct {
	scope  *draintest.Scope
	nats   *draintest.NATSCluster
	redis  *draintest.RedisFailoverCluster
	names  stream.Names
	rng    *rand.Rand
	outage time.Duration
	logf   func(format string, args ...any)
}

// clusterNodeTimeout is the Redis Cluster's cluster-node-timeout: how long a master may be
// unreachable before its replica is promoted.
const clusterNodeTimeout = time.Second

func startClustered(o Options, names stream.Names, logf func(format string, args ...any)) (c *clustered, err error) {
	c = &clustered{scope: draintest.NewScope(), names: names, rng: rand.New(rand.NewPCG(o.Seed, 11)), outage: o.RedisOutage, logf: logf}
	err = scoped(func() {
		c.nats = draintest.StartNATSCluster(c.scope, 3)
		c.redis = draintest.StartRedisFailoverCluster(c.scope, 3, 1, clusterNodeTimeout)
	})
	if err != nil {
		c.scope.Close()
		return nil, err
	}
	return c, nil
}

// scoped runs f, turning a draintest.Scope failure (a panic) into an error.
func scoped(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}

func (c *clustered) natsURL() string                  { return c.nats.URLs() }
func (c *clustered) redisURL(namespace string) string { return c.redis.URL(namespace) }
func (c *clustered) redisClient() redis.UniversalClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.redis.Addrs(), ClusterStateReloadInterval: time.Second})
}
func (c *clustered) env() []string {
	return []string{"DRAIN_STREAM_REPLICAS=3", "DRAIN_REDIS_WAIT_REPLICAS=1"}
}
func (c *clustered) close() { c.scope.Close() }
func (c *clustered) String() string {
	return fmt.Sprintf("NATS cluster %s (R3 streams), Redis Cluster of 3 masters with a replica each (%s, cluster-node-timeout %s, WAIT 1)",
		c.nats.URLs(), strings.Join(c.redis.Addrs(), ","), clusterNodeTimeout)
}

func (c *clustered) faults() []fault {
	return []fault{
		{at: 1.0 / 5, nats: true, down: 2 * time.Second, begin: c.killNATS(true)},
		{at: 2.0 / 5, down: c.outage, begin: c.killRedisMaster},
		{at: 3.0 / 5, nats: true, down: 2 * time.Second, begin: c.killNATS(false)},
		{at: 4.0 / 5, down: c.outage, begin: c.killRedisMaster},
	}
}

// killNATS SIGKILLs the events stream's leader (leader) or another node at random; repairing
// starts it again on its store and waits until its JetStream answers.
func (c *clustered) killNATS(leader bool) func() (string, func() error, error) {
	return func() (string, func() error, error) {
		var victim *draintest.NATS
		if err := scoped(func() { victim = c.nats.StreamLeader(c.scope, c.names.Stream(stream.Events)) }); err != nil {
			return "", nil, err
		}
		what := "SIGKILLed the events stream's leader " + victim.Name()
		if !leader {
			var others []*draintest.NATS
			for _, n := range c.nats.Nodes {
				if n != victim {
					others = append(others, n)
				}
			}
			victim = others[c.rng.IntN(len(others))]
			what = "SIGKILLed NATS node " + victim.Name() + " (not the events stream's leader)"
		}
		victim.Kill()
		return what, func() error { return scoped(victim.Start) }, nil
	}
}

// killRedisMaster SIGKILLs a random master. Repairing waits until its replica has taken its
// slots over (a node without persistence that came back before that would return empty, as
// the master of its slots), starts it again and waits until it has synchronised as a replica.
func (c *clustered) killRedisMaster() (string, func() error, error) {
	masters := c.redis.Masters()
	if len(masters) == 0 {
		return "", nil, errors.New("redis cluster: no master answers")
	}
	victim := masters[c.rng.IntN(len(masters))]
	victim.Stop()
	killed := time.Now()
	repair := func() error {
		for len(c.redis.Masters()) < len(masters) {
			if time.Since(killed) > 30*time.Second {
				return fmt.Errorf("redis cluster: no replica took over from %s in 30 s", victim.Addr())
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.logf("a replica took over from %s %s after its SIGKILL; starting it again", victim.Addr(), time.Since(killed).Round(100*time.Millisecond))
		return scoped(func() {
			victim.Start()
			c.redis.WaitHealthy(30 * time.Second)
		})
	}
	return "SIGKILLed Redis master " + victim.Addr() + " (its replica takes over)", repair, nil
}
