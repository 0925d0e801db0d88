package stack

import (
	"os"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

// Scratch is what a benchmark runs against: a temporary directory, an embedded JetStream
// server on a free port storing in it and, when asked for, a redis-server without persistence
// (Redis.Ephemeral) on a free port, and a Redis Cluster (StartRedisCluster).
type Scratch struct {
	Dir     string
	NATS    *NATS
	Redis   *Redis                  // nil unless asked for
	Cluster *draintest.RedisCluster // nil unless started
}

// StartScratch creates a temporary directory named after pattern (see os.MkdirTemp), starts
// the JetStream server in it and, with withRedis, the redis-server. Close undoes it all, also
// after an error.
func StartScratch(pattern string, withRedis bool) (*Scratch, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, err
	}
	s := &Scratch{Dir: dir}
	port, err := FreePort()
	if err == nil {
		s.NATS, err = StartNATS(port, dir)
	}
	if err == nil && withRedis {
		if port, err = FreePort(); err == nil {
			s.Redis = &Redis{Port: port, Dir: dir, Ephemeral: true}
			err = s.Redis.Start()
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the servers (Redis with SIGKILL: it keeps nothing) and removes the directory.
func (s *Scratch) Close() {
	if s.Cluster != nil {
		s.Cluster.Close()
	}
	if s.Redis != nil {
		s.Redis.Kill()
	}
	if s.NATS != nil {
		s.NATS.Stop()
	}
	_ = os.RemoveAll(s.Dir)
}
