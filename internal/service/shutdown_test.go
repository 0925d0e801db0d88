package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A service whose work ends within the timeout after SIGTERM exits 0; one whose work is still
// running when the timeout passes logs at error level what it abandoned and exits 1.
func TestShutdownPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		work    time.Duration // how long the work takes to stop after cancellation
		code    int
		message string
	}{
		{"clean drain", 0, 0, `"msg":"stopped"`},
		{"timeout", time.Minute, 1, `"level":"ERROR"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := main(config.Sweeper, "s", nil, []string{"DRAIN_SHUTDOWN_TIMEOUT=200ms", "DRAIN_ADMIN_ADDR=127.0.0.1:0"}, io.Discard, &out,
				func(ctx context.Context, l *Lifecycle) error {
					wctx, cancel := context.WithCancel(ctx)
					defer cancel()
					return l.Run(wctx, Spec{
						Work: func(ctx context.Context) error {
							cancel() // SIGTERM
							<-ctx.Done()
							time.Sleep(tc.work)
							return nil
						},
						Abandoned: "3 test messages (redelivered)",
					})
				})
			if code != tc.code || !strings.Contains(out.String(), tc.message) {
				t.Fatalf("exit %d (want %d), output:\n%s", code, tc.code, out.String())
			}
			if tc.code == 1 && !strings.Contains(out.String(), "abandoned 3 test messages (redelivered)") {
				t.Errorf("the error does not name what was abandoned:\n%s", out.String())
			}
		})
	}
}

func TestAwaitStopReturnsTheWorksError(t *testing.T) {
	done := make(chan error, 1)
	boom := errors.New("boom")
	done <- boom
	if err := AwaitStop(context.Background(), done, time.Second, "x", nil, discard()); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
}

// CloseNATS flushes what was published before closing: a core publish sent just before it
// reaches a subscriber on another connection.
func TestCloseNATSFlushes(t *testing.T) {
	srv := draintest.StartNATS(t)
	sub, _ := srv.Connect(t)
	got, err := sub.SubscribeSync("close.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, _ := srv.Connect(t)
	for range 1000 {
		if err := pub.Publish("close.test", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	CloseNATS(pub, 5*time.Second, discard())
	if !pub.IsClosed() {
		t.Fatal("connection still open")
	}
	for i := range 1000 {
		if _, err := got.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("message %d of 1000 lost: %v", i, err)
		}
	}
	CloseNATS(pub, time.Second, discard()) // closing twice is harmless
}

// One URL gives a single-node client, a list of seeds a Redis Cluster client.
func TestNewRedisSingleOrCluster(t *testing.T) {
	one, err := config.ParseRedisURL("redis://127.0.0.1:1/3/ns")
	if err != nil {
		t.Fatal(err)
	}
	c := NewRedis(one)
	defer c.Close()
	if rc, ok := c.(*redis.Client); !ok || rc.Options().DB != 3 {
		t.Errorf("single URL gave %T", c)
	}
	many, err := config.ParseRedisURL("redis://:pw@127.0.0.1:1,redis://:pw@127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	cc := NewRedis(many)
	defer cc.Close()
	if rc, ok := cc.(*redis.ClusterClient); !ok || len(rc.Options().Addrs) != 2 || rc.Options().Password != "pw" {
		t.Errorf("list gave %T", cc)
	}
}
