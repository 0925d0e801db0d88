package stream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/replication"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// reply is a Redis error reply as go-redis returns it: an error with a RedisError method.
type reply string

func (r reply) Error() string { return string(r) }
func (reply) RedisError()     {}

func TestIsRedisOutageTable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
	for _, c := range []struct {
		err    error
		outage bool
	}{
		{nil, false},
		// The server cannot serve now.
		{reply("LOADING Redis is loading the dataset in memory"), true},
		{reply("READONLY You can't write against a read only replica."), true},
		{reply("CLUSTERDOWN The cluster is down"), true},
		{reply("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{reply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."), true},
		{reply("OOM command not allowed when used memory > 'maxmemory'."), true},
		{reply("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."), true},
		{reply("NOREPLICAS Not enough good replicas to write."), true},
		{reply("ERR max number of clients reached"), true},
		{reply("NOAUTH Authentication required."), true},
		{reply("WRONGPASS invalid username-password pair or user is disabled."), true},
		{reply("NOPERM this user has no permissions to run the 'evalsha' command"), true},
		{reply("ERR READONLY You can't write against a read only replica."), true}, // a proxy's prefix
		{reply("READONLY You can't write against a read only replica. script: 1c2e, on @user_script:3."), true},
		// The message's keys or data.
		{reply("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{reply("ERR user_script:1: boom script: 1c2e, on @user_script:1."), false},
		{reply("ERR Error running script (call to f_1c2e): @user_script:1: boom"), false},
		{reply("ERR value is not an integer or out of range"), false},
		{reply("CROSSSLOT Keys in request don't hash to the same slot"), false},
		{reply("BUSYKEY Target key name already exists."), false},
		{reply("ERR unknown command 'HEXPIRE'"), false},
		// The connection.
		{refused, true},
		{fmt.Errorf("reorder: %w", reset), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{&net.DNSError{Err: "no such host", Name: "redis.invalid", IsNotFound: true}, true},
		{io.EOF, true},
		{fmt.Errorf("cache: %w", io.ErrUnexpectedEOF), true},
		{syscall.EPIPE, true},
		{redis.ErrClosed, true},
		{redis.ErrPoolTimeout, true},
		{redis.ErrPoolExhausted, true},
		{context.DeadlineExceeded, true},
		{errors.New("redis: cluster has no nodes"), true},
		{errors.New("redis: all sentinels specified in configuration are unreachable"), true},
		// A write too few replicas confirmed (replication.Wait).
		{fmt.Errorf("reorder: %w", &replication.Error{Addr: "127.0.0.1:1", Want: 1}), true},
		// Not Redis at all, or nothing Redis said.
		{errors.New("reorder: unexpected reply"), false},
		{redis.Nil, false},
	} {
		name := "nil"
		if c.err != nil {
			name = c.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			if got := stream.IsRedisOutage(c.err); got != c.outage {
				t.Fatalf("IsRedisOutage(%v) = %v, want %v", c.err, got, c.outage)
			}
			res := stream.RedisFailure(c.err)
			var tr *stream.TransientError
			var rt *stream.RetryError
			switch {
			case c.err == nil:
				if res != nil {
					t.Fatalf("RedisFailure(nil) = %v", res)
				}
			case c.outage && !errors.As(res, &tr), !c.outage && !errors.As(res, &rt):
				t.Fatalf("RedisFailure(%v) = %T, outage %v", c.err, res, c.outage)
			case !errors.Is(res, c.err):
				t.Fatalf("RedisFailure(%v) lost the cause", c.err)
			}
		})
	}
}

// Against a real redis-server: the replies a message causes are budgeted retries; a server
// that is stopped, read-only, out of memory, busy, protected by a password, or too slow to
// answer is an outage, and when it is back the same command succeeds.
func TestIsRedisOutageRealServer(t *testing.T) {
	srv := draintest.StartRedis(t)
	ctx := context.Background()
	rdb := srv.Client(t, 0)
	admin := srv.Client(t, 0)
	mustOutage := func(what string, err error, want bool) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if got := stream.IsRedisOutage(err); got != want {
			t.Fatalf("%s: IsRedisOutage(%q) = %v, want %v", what, err, got, want)
		}
	}
	if err := rdb.Set(ctx, "s", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	mustOutage("HGET on a string", rdb.HGet(ctx, "s", "f").Err(), false)
	mustOutage("script runtime error", rdb.Eval(ctx, `error("boom")`, []string{"k"}).Err(), false)
	mustOutage("INCR of a string in a script", rdb.Eval(ctx, `return redis.call("INCR", KEYS[1])`, []string{"s"}).Err(), false)

	// Read-only replica (of a master that does not exist).
	if err := admin.Do(ctx, "REPLICAOF", "127.0.0.1", draintest.FreePort(t)).Err(); err != nil {
		t.Fatal(err)
	}
	mustOutage("SET on a replica", rdb.Set(ctx, "k", "v", 0).Err(), true)
	mustOutage("a writing script on a replica", rdb.Eval(ctx, `return redis.call("SET", KEYS[1], "v")`, []string{"k"}).Err(), true)
	if err := admin.Do(ctx, "CONFIG", "SET", "replica-serve-stale-data", "no").Err(); err != nil {
		t.Fatal(err)
	}
	mustOutage("GET on a replica without its master", rdb.Get(ctx, "s").Err(), true)
	if err := admin.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}

	// Out of memory.
	if err := admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	mustOutage("SET over maxmemory", rdb.Set(ctx, "k", "v", 0).Err(), true)
	if err := admin.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}

	// A script running long: the server answers BUSY to others, and the client that waits past
	// its read timeout sees a timeout.
	if err := admin.ConfigSet(ctx, "busy-reply-threshold", "50").Err(); err != nil {
		t.Fatal(err)
	}
	slow := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: 150 * time.Millisecond, MaxRetries: -1})
	defer slow.Close()
	spin := make(chan error, 1)
	go func() {
		spin <- slow.Eval(ctx, `local t = redis.call("TIME"); local s = t[1] + 1
			while tonumber(redis.call("TIME")[1]) <= s do end; return 1`, nil).Err()
	}()
	time.Sleep(300 * time.Millisecond)
	other := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer other.Close()
	mustOutage("GET while a script runs", other.Get(ctx, "s").Err(), true)
	mustOutage("the script's client past its read timeout", <-spin, true)
	time.Sleep(2 * time.Second) // let the script end

	// Credentials: a new connection without the password.
	if err := admin.ConfigSet(ctx, "requirepass", "secret").Err(); err != nil {
		t.Fatal(err)
	}
	anon := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer anon.Close()
	mustOutage("GET without the password", anon.Get(ctx, "s").Err(), true)
	if err := admin.ConfigSet(ctx, "requirepass", "").Err(); err != nil {
		t.Fatal(err)
	}

	// A pool with its only connection taken.
	tiny := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 1, PoolTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer tiny.Close()
	conn := tiny.Conn()
	if err := conn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	mustOutage("GET with the pool exhausted", tiny.Get(ctx, "s").Err(), true)
	_ = conn.Close()

	// The server stopped mid-test, then started again: the same command works.
	srv.Stop()
	mustOutage("GET with the server stopped", rdb.Get(ctx, "s").Err(), true)
	mustOutage("a script with the server stopped", rdb.Eval(ctx, `return 1`, nil).Err(), true)
	srv.Start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := rdb.Set(ctx, "s", "back", 0).Err()
		if err == nil {
			break
		}
		if !stream.IsRedisOutage(err) || time.Now().After(deadline) {
			t.Fatalf("SET after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
