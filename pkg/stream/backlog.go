package stream

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBacklogInterval is how often Consume reads the consumer's info for
// ConsumerConfig.ObserveBacklog.
const DefaultBacklogInterval = 5 * time.Second

// Backlog is what the server says about a durable consumer's queue (jetstream.ConsumerInfo),
// the same for every replica that shares it.
type Backlog struct {
	// Consumer is the durable consumer's name.
	Consumer string
	// Pending is how many messages of the stream matching the consumer's filter are not yet
	// delivered (NumPending).
	Pending uint64
	// AckPending is how many delivered messages await an ack (NumAckPending).
	AckPending int
}

// pollBacklog calls c.ObserveBacklog with the consumer's info at once and then every
// c.BacklogInterval until ctx is cancelled. A failed read (NATS away, the consumer being
// declared again) is skipped: the last values stay until the next read succeeds. Each read is
// one JetStream API request, bounded to 2 s.
func (c *ConsumerConfig) pollBacklog(ctx context.Context, js jetstream.JetStream) {
	t := time.NewTicker(c.BacklogInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cons, err := js.Consumer(ictx, c.Stream, c.Durable)
		if err == nil {
			info := cons.CachedInfo()
			c.ObserveBacklog(Backlog{Consumer: c.Durable, Pending: info.NumPending, AckPending: info.NumAckPending})
		} else if ctx.Err() == nil {
			c.Log.Debug("consumer info not read", "consumer", c.Durable, "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
