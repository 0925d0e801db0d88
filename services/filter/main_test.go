package main

import (
	"os"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/internal/servicetest"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	draintest.RemoveBinaries()
	os.Exit(code)
}

func TestVersion(t *testing.T) {
	servicetest.Version(t, draintest.BuildBinary(t, "."), "filter")
}

// Started while NATS and Redis are down, filter is live at once (a liveness probe never kills
// it), /readyz names what it waits for, and it turns ready once they are up, without a restart.
func TestStartsBeforeNATSAndRedis(t *testing.T) {
	s := servicetest.StartWithoutDependencies(t, draintest.BuildBinary(t, "."), "filter", []string{"DRAIN_PREFIX=lifecycle"},
		"nats", "streams", "redis")
	s.StartDependencies(t, 30*time.Second)
}
