package draintest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Redis is a private Redis server.
type Redis struct {
	t        testing.TB
	port     int
	dir      string
	aof      bool
	cmd      *exec.Cmd
	ctr      testcontainers.Container
	hostPort string
}

// RedisOption configures StartRedis.
type RedisOption func(*Redis)

// WithAOF turns on append-only persistence, so data survives Stop and Start.
func WithAOF() RedisOption { return func(r *Redis) { r.aof = true } }

// StartRedis starts redis-server from PATH on a random port in a temporary directory. Without
// redis-server it falls back to a testcontainers Redis when a Docker engine answers; with
// neither, the test fails naming both options.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	r := &Redis{t: t, dir: t.TempDir()}
	for _, o := range opts {
		o(r)
	}
	if _, err := exec.LookPath("redis-server"); err == nil {
		r.port = freePort(t)
	} else if !dockerAvailable() {
		t.Fatalf("draintest: Redis is needed: install redis-server (apt-get install -y redis-server) or run a Docker engine for testcontainers")
	}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Addr is host:port of the server; it stays the same across restarts.
func (r *Redis) Addr() string {
	if r.hostPort != "" {
		return r.hostPort
	}
	return "127.0.0.1:" + strconv.Itoa(r.port)
}

// URL returns the drain-style URL of database db with namespace ns ("" for the default).
func (r *Redis) URL(db int, ns string) string {
	u := "redis://" + r.Addr() + "/" + strconv.Itoa(db)
	if ns != "" {
		u += "/" + ns
	}
	return u
}

// Start starts the server (again).
func (r *Redis) Start() {
	r.t.Helper()
	if r.port == 0 {
		r.startContainer()
		return
	}
	aof := "no"
	if r.aof {
		aof = "yes"
	}
	cmd := exec.Command("redis-server",
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--appendonly", aof, "--appendfsync", "everysec", "--daemonize", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("draintest: start redis-server: %v", err)
	}
	r.cmd = cmd
	waitTCP(r.t, r.port, "redis-server")
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatalf("draintest: redis-server on %s does not answer PING", r.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *Redis) startContainer() {
	ctx := context.Background()
	cmd := []string{"redis-server", "--save", ""}
	if r.aof {
		cmd = append(cmd, "--appendonly", "yes")
	}
	if r.ctr != nil {
		if err := r.ctr.Start(ctx); err != nil {
			r.t.Fatalf("draintest: restart redis container: %v", err)
		}
	} else {
		ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
			ContainerRequest: testcontainers.ContainerRequest{
				Image:        "redis:7-alpine",
				Cmd:          cmd,
				ExposedPorts: []string{"6379/tcp"},
				WaitingFor:   wait.ForListeningPort("6379/tcp"),
			},
			Started: true,
		})
		if err != nil {
			r.t.Fatalf("draintest: redis container: %v", err)
		}
		r.ctr = ctr
		r.t.Cleanup(func() { _ = ctr.Terminate(context.Background()) })
	}
	host, err := r.ctr.Host(ctx)
	if err != nil {
		r.t.Fatalf("draintest: redis container host: %v", err)
	}
	port, err := r.ctr.MappedPort(ctx, "6379/tcp")
	if err != nil {
		r.t.Fatalf("draintest: redis container port: %v", err)
	}
	r.hostPort = fmt.Sprintf("%s:%s", host, port.Port())
}

// Stop kills the server (like a crash: no final save beyond what AOF already wrote).
// Safe to call twice.
func (r *Redis) Stop() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
	if r.ctr != nil {
		timeout := time.Second
		_ = r.ctr.Stop(context.Background(), &timeout)
	}
}

// Restart stops and starts the server.
func (r *Redis) Restart() {
	r.Stop()
	r.Start()
}

// Client returns a client of database db, closed at cleanup.
func (r *Redis) Client(t testing.TB, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: db})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func dockerAvailable() bool {
	ok := false
	func() {
		defer func() { _ = recover() }()
		p, err := testcontainers.NewDockerProvider()
		if err != nil {
			return
		}
		defer p.Close()
		ok = p.Health(contextTimeout(3*time.Second)) == nil
	}()
	return ok
}

func contextTimeout(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	time.AfterFunc(d, cancel)
	return ctx
}
