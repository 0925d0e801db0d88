package reorder_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
)

// exampleRedis is a client of a private redis-server that TestMain starts for the examples
// (listening on a Unix socket only, in a temporary directory).
var exampleRedis *redis.Client

func TestMain(m *testing.M) {
	stop, err := startExampleRedis()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reorder examples:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// startExampleRedis starts redis-server from PATH without TCP, on a socket in a new temporary
// directory, and sets exampleRedis. The returned func stops it and removes the directory.
func startExampleRedis() (stop func(), err error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server is needed in PATH (apt-get install -y redis-server)")
	}
	dir, err := os.MkdirTemp("", "reorder-example-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command("redis-server", "--port", "0", "--unixsocket", sock, "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop = func() {
		if exampleRedis != nil {
			exampleRedis.Close()
		}
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	exampleRedis = redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	deadline := time.Now().Add(10 * time.Second)
	for exampleRedis.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("redis-server on %s does not answer PING", sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return stop, nil
}

// A filter service runs each message's batch through Run with the message's stream sequence,
// hands res.Fresh on, and acks only afterwards: a redelivery (same sequence) gets the same
// fresh events again, while another message with the same events finds them stale.
func ExampleFilter_Run() {
	ctx := context.Background()
	f, err := reorder.New(exampleRedis, reorder.Options{}) // namespace "rm", state kept 90 days
	if err != nil {
		panic(err)
	}
	batch, err := event.Parse([]byte(`[
		{"topic":"orders","type":"update","url":"https://orders.example.com/1","t":10},
		{"topic":"orders","type":"update","url":"https://orders.example.com/1","t":12},
		{"topic":"orders","type":"noop","url":"https://orders.example.com/2","t":11}]`))
	if err != nil {
		panic(err)
	}
	res, err := f.Run(ctx, 42, batch, true)
	if err != nil {
		panic(err) // Redis unreachable: a service retries the message later
	}
	for _, e := range res.Fresh {
		fmt.Println("fresh:", e.URL, e.T)
	}
	fmt.Println("stale:", res.Stale, "newly dirty:", res.NewlyDirty)

	again, _ := f.Run(ctx, 42, batch, true) // the same message, redelivered
	fmt.Println("redelivery:", len(again.Fresh), "fresh")
	other, _ := f.Run(ctx, 43, batch, true) // another message with the same events
	fmt.Println("other message:", len(other.Fresh), "fresh")

	st, _ := reorder.ReadState(ctx, exampleRedis, "rm", "https://orders.example.com/1")
	fmt.Printf("state: t=%d seq=%d\n", st.T, st.Seq)
	// Output:
	// fresh: https://orders.example.com/1 12
	// fresh: https://orders.example.com/2 11
	// stale: 1 newly dirty: [https://orders.example.com/1]
	// redelivery: 2 fresh
	// other message: 0 fresh
	// state: t=12 seq=42
}
