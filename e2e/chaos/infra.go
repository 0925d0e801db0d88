package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// infra is the NATS and Redis a run uses, and the failures it inflicts on them.
type infra interface {
	natsURL() string
	redisURL() string
	env() []string // settings the services need on this infrastructure
	String() string
	// failNATS inflicts the i-th NATS failure: a restart, or on a cluster a SIGKILL of a node
	// (the leader of eventsStream first) and its restart.
	failNATS(i int, eventsStream string)
	// failRedis inflicts the i-th Redis failure: a SIGKILL and restart from the AOF, or on a
	// cluster a SIGKILL of a master, whose restart (as a replica) follows its replica's
	// promotion. It returns how long the promotion took and when it happened.
	failRedis(i int) (promoted time.Duration, at time.Time, err error)
	client() redis.UniversalClient // a client for Verify
	close()
}

// single is one nats-server and one redis-server (AOF, fsync always).
type single struct {
	ns        *stack.NATS
	rs        *stack.Redis
	namespace string
	logf      func(string, ...any)
}

func startSingle(work, namespace string, logf func(string, ...any)) (*single, error) {
	natsPort, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	redisPort, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	ns, err := stack.StartNATS(natsPort, filepath.Join(work, "nats"))
	if err != nil {
		return nil, err
	}
	rs, err := stack.StartRedis(redisPort, filepath.Join(work, "redis"), "always")
	if err != nil {
		ns.Stop()
		return nil, err
	}
	return &single{ns: ns, rs: rs, namespace: namespace, logf: logf}, nil
}

func (s *single) natsURL() string  { return s.ns.URL() }
func (s *single) redisURL() string { return s.rs.URL(0, s.namespace) }
func (s *single) env() []string    { return nil }
func (s *single) String() string {
	return fmt.Sprintf("NATS %s, Redis %s (AOF, fsync always)", s.ns.URL(), s.rs.Addr())
}

func (s *single) failNATS(int, string) {
	s.logf("restarting NATS")
	s.ns.Stop()
	time.Sleep(500 * time.Millisecond)
	if err := s.ns.Start(); err != nil {
		s.logf("NATS restart failed: %v", err)
	}
}

func (s *single) failRedis(int) (time.Duration, time.Time, error) {
	s.logf("SIGKILL redis-server and restart it from its AOF")
	s.rs.Kill()
	time.Sleep(500 * time.Millisecond)
	return 0, time.Now(), s.rs.Start()
}

func (s *single) client() redis.UniversalClient {
	return redis.NewClient(&redis.Options{Addr: s.rs.Addr()})
}

func (s *single) close() {
	s.rs.Kill()
	s.ns.Stop()
}

// clusters is a 3-node NATS cluster and a Redis Cluster of 3 masters with a replica each.
type clusters struct {
	scope     *draintest.Scope
	nats      *draintest.NATSCluster
	redis     *draintest.RedisFailoverCluster
	namespace string
	logf      func(string, ...any)
	restarts  chan struct{} // one token per Redis restart in progress
}

// redisNodeTimeout is the Redis Cluster's cluster-node-timeout: a master unreachable this long
// is failed over to its replica.
const redisNodeTimeout = 2 * time.Second

func startClusters(namespace string, logf func(string, ...any)) (c *clusters, err error) {
	c = &clusters{scope: draintest.NewScope(), namespace: namespace, logf: logf, restarts: make(chan struct{}, 8)}
	if err := c.try(func() {
		c.nats = draintest.StartNATSCluster(c.scope, 3)
		c.redis = draintest.StartRedisFailoverCluster(c.scope, 3, 1, redisNodeTimeout)
	}); err != nil {
		c.scope.Close()
		return nil, err
	}
	return c, nil
}

// try runs f, turning the panic of a draintest.Scope failure into an error.
func (c *clusters) try(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	f()
	return nil
}

func (c *clusters) natsURL() string  { return c.nats.URLs() }
func (c *clusters) redisURL() string { return c.redis.URL(c.namespace) }
func (c *clusters) env() []string {
	return []string{"DRAIN_STREAM_REPLICAS=3", "DRAIN_REDIS_WAIT_REPLICAS=1"}
}

func (c *clusters) String() string {
	return fmt.Sprintf("NATS cluster %s (R3 streams), Redis Cluster %v (3 masters + 3 replicas, node timeout %v, WAIT 1)",
		c.nats.URLs(), c.redis.Addrs(), redisNodeTimeout)
}

func (c *clusters) failNATS(i int, eventsStream string) {
	err := c.try(func() {
		leader := c.nats.StreamLeader(c.scope, eventsStream)
		victim := leader
		if i > 0 { // then another node than the leader
			idx := slices.Index(c.nats.Nodes, leader)
			victim = c.nats.Nodes[(idx+1+i%2)%len(c.nats.Nodes)]
		}
		role := "a follower of " + eventsStream
		if victim == leader {
			role = "the leader of " + eventsStream
		}
		c.logf("SIGKILL NATS node %s (%s)", victim.Name(), role)
		victim.Kill()
		time.Sleep(2 * time.Second)
		victim.Start()
	})
	if err != nil {
		c.logf("NATS failure: %v", err)
	}
}

func (c *clusters) failRedis(i int) (time.Duration, time.Time, error) {
	masters := c.redis.Masters()
	if len(masters) == 0 {
		return 0, time.Time{}, fmt.Errorf("no Redis master answers")
	}
	victim := masters[i%len(masters)]
	c.logf("SIGKILL Redis master %s", victim.Addr())
	victim.Stop()
	killed := time.Now()
	for {
		ms := c.redis.Masters()
		if len(ms) == len(masters) && !slices.Contains(ms, victim) {
			break
		}
		if time.Since(killed) > time.Minute {
			return 0, time.Time{}, fmt.Errorf("no replica of %s promoted within a minute", victim.Addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	at := time.Now()
	c.logf("replica of %s promoted %v after the kill; restarting it as a replica", victim.Addr(), at.Sub(killed).Round(time.Millisecond))
	c.restarts <- struct{}{}
	go func() {
		defer func() { <-c.restarts }()
		if err := c.try(func() {
			victim.Start()
			c.redis.WaitHealthy(time.Minute)
		}); err != nil {
			c.logf("restart of %s: %v", victim.Addr(), err)
		}
	}()
	return at.Sub(killed), at, nil
}

func (c *clusters) client() redis.UniversalClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.redis.Addrs(), ClusterStateReloadInterval: time.Second})
}

func (c *clusters) close() {
	for range cap(c.restarts) { // wait for restarts in progress
		c.restarts <- struct{}{}
	}
	c.scope.Close()
}

// measureResume records, for the filter, the warmer (with a cache) and the sweeper, how long
// after at (a Redis promotion) each made progress again: its consumer's ack floor moved (the
// sweeper: a batch reached <prefix>.swept), or it has nothing left to do (no message pending;
// the sweeper: the dirty map m is empty). It waits at most a minute; a stage that did not
// move is listed in sum.ResumeFailed.
func measureResume(ctx context.Context, js jetstream.JetStream, names stream.Names, m *dirty.Map, cache bool, at time.Time, sum *Summary, logf func(string, ...any)) {
	kinds := map[string]stream.Kind{"filter": stream.Events, "sweeper": stream.Swept}
	if cache {
		kinds["warmer"] = stream.Warm
	}
	base := map[string]uint64{}
	for stage, k := range kinds {
		base[stage] = progress(ctx, js, names.Stream(k), nil)
	}
	deadline := at.Add(time.Minute)
	for len(base) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		for stage, b := range base {
			var sweeper *dirty.Map
			if stage == "sweeper" {
				sweeper = m
			}
			if p := progress(ctx, js, names.Stream(kinds[stage]), sweeper); p > b || p == idle {
				d := time.Since(at).Round(time.Millisecond)
				logf("%s resumed %v after the promotion", stage, d)
				sum.Resumed[stage] = max(sum.Resumed[stage], d)
				delete(base, stage)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for stage := range base {
		sum.ResumeFailed = append(sum.ResumeFailed, stage)
	}
}

// idle is progress's answer for a consumer with nothing pending or unacked.
const idle = ^uint64(0)

// progress is, for a stream's durable consumer, its ack floor (idle when it has nothing to
// do); with a sweeper's dirty map, the stream's last sequence (what the sweeper publishes),
// idle when the map is empty. 0 when unknown.
func progress(ctx context.Context, js jetstream.JetStream, name string, sweeper *dirty.Map) uint64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0
	}
	if sweeper != nil {
		if n, err := sweeper.Count(ctx); err == nil && n == 0 {
			return idle
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.LastSeq
	}
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		if ci.Config.Durable == "" {
			continue
		}
		if ci.NumPending == 0 && ci.NumAckPending == 0 {
			return idle
		}
		return ci.AckFloor.Stream
	}
	return 0
}
