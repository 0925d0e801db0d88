package draintest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a private Redis server.
type Redis struct {
	t    T
	port int
	dir  string
	aof  bool
	args []string
	cmd  *exec.Cmd
}

// RedisOptions configure StartRedis; the zero value is a server without persistence.
type RedisOptions struct {
	// AOF turns on append-only persistence, so data survives Stop and Start.
	AOF bool
	// Args are more redis-server arguments, appended to the defaults: "--replicaof",
	// "127.0.0.1", "6380" makes a replica, "--cluster-enabled", "yes" a cluster node.
	Args []string
}

// StartRedis starts redis-server from PATH on a random port in a temporary directory, killed
// at cleanup, with the options given (at most one is needed; any set AOF turns it on, and the
// Args of all are passed).
// Without redis-server the test fails with the command that installs it.
func StartRedis(t T, opts ...RedisOptions) *Redis {
	t.Helper()
	r := &Redis{t: t, dir: t.TempDir()}
	for _, o := range opts {
		r.aof = r.aof || o.AOF
		r.args = append(r.args, o.Args...)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("draintest: redis-server is needed on PATH (apt-get install -y redis-server)")
	}
	r.port = FreePort(t)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Addr is host:port of the server; it stays the same across restarts.
func (r *Redis) Addr() string {
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
	aof := "no"
	if r.aof {
		aof = "yes"
	}
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--appendonly", aof, "--appendfsync", "everysec", "--daemonize", "no", "--protected-mode", "no"},
		r.args...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("draintest: start redis-server: %v", err)
	}
	r.cmd = cmd
	waitTCP(r.t, r.port, "redis-server")
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for err := c.Ping(context.Background()).Err(); err != nil && !isLoading(err); err = c.Ping(context.Background()).Err() {
		if time.Now().After(deadline) {
			r.t.Fatalf("draintest: redis-server on %s does not answer PING", r.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (like a crash: no final save beyond what AOF already wrote).
// Safe to call twice.
func (r *Redis) Stop() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// Restart stops and starts the server.
func (r *Redis) Restart() {
	r.Stop()
	r.Start()
}

// Client returns a client of database db, closed at cleanup.
func (r *Redis) Client(t T, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), DB: db})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// isLoading reports a server that answers but is still loading its data (a replica syncing).
func isLoading(err error) bool { return strings.HasPrefix(err.Error(), "LOADING") }
