package stack

import (
	"path/filepath"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

// StartRedisCluster starts a Redis Cluster of masters masters without replicas, its nodes
// keeping their directories under s.Dir (draintest.LaunchRedisCluster: the same processes and
// joining as the tests'), and keeps it in s.Cluster; Close kills it. It takes a few seconds.
func (s *Scratch) StartRedisCluster(masters int) (*draintest.RedisCluster, error) {
	c, err := draintest.LaunchRedisCluster(filepath.Join(s.Dir, "cluster"), masters, 0)
	if err != nil {
		return nil, err
	}
	s.Cluster = c
	return c, nil
}
