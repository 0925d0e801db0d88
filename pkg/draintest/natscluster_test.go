package draintest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A 3-node cluster keeps an R3 stream writable when its leader is killed, and the killed node
// rejoins on the same store.
func TestNATSClusterSurvivesLeaderKill(t *testing.T) {
	c := StartNATSCluster(t, 3)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		for i := range n {
			for {
				// A request that reached the killed leader is never answered: bound each
				// attempt, so that the next one goes to the new leader.
				attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
				_, err := js.Publish(attempt, "s.x", []byte{byte(i)})
				cancelAttempt()
				if err == nil {
					break
				} else if ctx.Err() != nil {
					t.Fatalf("publish: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	publish(10)
	leader := c.StreamLeader(t, "S")
	leader.Kill()
	publish(10)
	if next := c.StreamLeader(t, "S"); next == leader {
		t.Fatalf("leader %s still leads after SIGKILL", leader.Name())
	}
	leader.Start()
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 20 {
		t.Fatalf("stream holds %v messages (%v), want 20", info.State.Msgs, err)
	}
}
