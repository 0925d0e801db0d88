package draintest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

// A server started with a MaxPayload announces the limit, refuses a larger message and keeps the
// setting and its streams across a restart.
func TestStartNATSWithMaxPayload(t *testing.T) {
	srv := draintest.StartNATSWith(t, draintest.NATSOptions{MaxPayload: 4096})
	for round := range 2 {
		nc, js := srv.Connect(t)
		if got := nc.MaxPayload(); got != 4096 {
			t.Fatalf("round %d: MaxPayload = %d, want 4096", round, got)
		}
		ctx := context.Background()
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "s", Subjects: []string{"s"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "s", make([]byte, 4000)); err != nil {
			t.Fatalf("round %d: 4000 bytes: %v", round, err)
		}
		if _, err := js.Publish(ctx, "s", make([]byte, 5000)); !errors.Is(err, nats.ErrMaxPayload) {
			t.Fatalf("round %d: 5000 bytes: %v, want nats.ErrMaxPayload", round, err)
		}
		nc.Close()
		srv.Restart()
	}
	_, js := srv.Connect(t)
	s, err := js.Stream(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("%d messages after restarts, want 2", n)
	}
}
