// Package containers starts the drain's test dependencies, NATS with JetStream and Redis, as
// Docker containers through testcontainers-go, for apps whose CI has a Docker engine but no
// nats-server or redis-server binary. It is a module of its own: an app that imports only the
// library (github.com/routemaster-drain/drain/pkg) never has testcontainers or the Docker
// client in its module graph. With the binaries at hand, pkg/draintest is lighter: real
// processes, no engine, restartable on the same port.
package containers

import (
	"context"
	"fmt"
	"testing"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Images the containers run; override them before the first Start call.
var (
	NATSImage  = "nats:2.12-alpine"
	RedisImage = "redis:7-alpine"
)

// Available reports whether a Docker engine answers, so a test can skip without one.
func Available() bool {
	ok := false
	func() {
		defer func() { _ = recover() }() // testcontainers panics on some broken setups
		p, err := testcontainers.NewDockerProvider()
		if err != nil {
			return
		}
		defer p.Close()
		ok = p.Health(context.Background()) == nil
	}()
	return ok
}

// StartNATS starts a JetStream-enabled nats-server container, terminated at cleanup, and
// returns its client URL. The test is skipped when no Docker engine answers.
func StartNATS(t testing.TB) string {
	t.Helper()
	host, port := start(t, NATSImage, "4222/tcp", []string{"-js"}, wait.ForLog("Server is ready"))
	return fmt.Sprintf("nats://%s:%s", host, port)
}

// StartRedis starts a redis-server container (no persistence), terminated at cleanup, and
// returns the drain-style URL of database 0 with namespace ns ("" for the default). The test
// is skipped when no Docker engine answers.
func StartRedis(t testing.TB, ns string) string {
	t.Helper()
	host, port := start(t, RedisImage, "6379/tcp", []string{"redis-server", "--save", "", "--appendonly", "no"}, wait.ForListeningPort("6379/tcp"))
	u := fmt.Sprintf("redis://%s:%s/0", host, port)
	if ns != "" {
		u += "/" + ns
	}
	return u
}

func start(t testing.TB, image, port string, cmd []string, strategy wait.Strategy) (host, mapped string) {
	t.Helper()
	if !Available() {
		t.Skip("containers: no Docker engine answers; use pkg/draintest with nats-server and redis-server instead")
	}
	ctx := context.Background()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{Image: image, Cmd: cmd, ExposedPorts: []string{port}, WaitingFor: strategy},
		Started:          true,
	})
	if err != nil {
		t.Fatalf("containers: start %s: %v", image, err)
	}
	t.Cleanup(func() { _ = c.Terminate(context.Background()) })
	if host, err = c.Host(ctx); err != nil {
		t.Fatalf("containers: %s host: %v", image, err)
	}
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		t.Fatalf("containers: %s port: %v", image, err)
	}
	return host, p.Port()
}
