package stream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Consume reports the consumer's backlog as the server counts it: with five messages stored
// and a handler holding the two it may (MaxAckPending 2), three are pending and two await an
// ack; once the handler lets go, both fall to zero.
func TestConsumeObservesBacklog(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "rmbacklog"}
	declare(t, js, n)
	for i := range 5 {
		m := nats.NewMsg(n.Subject(stream.Warm, ""))
		m.Data = []byte{byte('a' + i)}
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var last stream.Backlog
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- stream.Consume(ctx, js, n.Subject(stream.DLQ, ""), stream.ConsumerConfig{
			Stream: n.Stream(stream.Warm), Durable: n.Durable("backlog"), Concurrency: 2, MaxAckPending: 2,
			BacklogInterval: 50 * time.Millisecond,
			ObserveBacklog: func(b stream.Backlog) {
				mu.Lock()
				last = b
				mu.Unlock()
			},
		}, func(ctx context.Context, _ stream.Msg) error {
			<-release
			return nil
		})
	}()
	observed := func(want stream.Backlog) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return last == want
		}
	}
	draintest.Eventually(t, 10*time.Second, "3 pending, 2 awaiting an ack",
		observed(stream.Backlog{Consumer: "rmbacklog_backlog", Pending: 3, AckPending: 2}))
	close(release)
	draintest.Eventually(t, 10*time.Second, "an empty backlog",
		observed(stream.Backlog{Consumer: "rmbacklog_backlog"}))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
