package main

import (
	"testing"

	"github.com/routemaster-drain/drain/internal/servicetest"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

func TestMain(m *testing.M) { draintest.Main(m) }

// Started while NATS and Redis are down, warmer is live at once (a liveness probe never kills
// it), /readyz names what it waits for, and it turns ready once they are up, without a restart.
func TestLifecycle(t *testing.T) {
	servicetest.Lifecycle(t, "warmer", []string{"DRAIN_PREFIX=lifecycle"}, "nats", "streams", "cache_redis")
}
