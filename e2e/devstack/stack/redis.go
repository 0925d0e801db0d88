package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a private redis-server (from PATH) with AOF persistence in Dir (unless Ephemeral).
type Redis struct {
	Port int
	Dir  string
	// Fsync is the appendfsync policy: "always" makes every acknowledged write survive a
	// SIGKILL; "everysec" (Redis's default) may lose the last second.
	Fsync string
	// Ephemeral turns persistence off (no AOF, no snapshots), as benchmarks want: a restart
	// then starts empty.
	Ephemeral bool
	cmd       *exec.Cmd
}

// StartRedis starts redis-server on 127.0.0.1:port with AOF on, data in dir.
func StartRedis(port int, dir, fsync string) (*Redis, error) {
	if fsync == "" {
		fsync = "everysec"
	}
	r := &Redis{Port: port, Dir: dir, Fsync: fsync}
	return r, r.Start()
}

// Addr is host:port of the server.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the drain-style URL of database db and namespace ns.
func (r *Redis) URL(db int, ns string) string {
	return "redis://" + r.Addr() + "/" + strconv.Itoa(db) + "/" + ns
}

// Start starts the server (again), replaying its AOF, and waits until it answers PING.
func (r *Redis) Start() error {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return errors.New("redis-server is not on PATH (apt-get install -y redis-server)")
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(r.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port), "--dir", r.Dir,
		"--save", "", "--daemonize", "no", "--protected-mode", "no"}
	if r.Ephemeral {
		args = append(args, "--appendonly", "no")
	} else {
		args = append(args, "--appendonly", "yes", "--appendfsync", r.Fsync)
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	r.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			r.Kill()
			return fmt.Errorf("redis-server on %s does not answer PING: %w", r.Addr(), err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL, like a crash.
func (r *Redis) Kill() { r.signal(syscall.SIGKILL) }

// Stop stops the server with SIGTERM (Redis flushes its AOF) and waits for it.
func (r *Redis) Stop() { r.signal(syscall.SIGTERM) }

func (r *Redis) signal(sig syscall.Signal) {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
	r.cmd = nil
}
