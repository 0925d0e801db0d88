package stream

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/event"
)

// Batch is one message of <prefix>.events.<topic> (or .changed./.siphon.): the events of one
// topic from one bus batch, in bus order.
type Batch struct {
	Topic  string
	Events []event.Event
	Msg    Msg
}

// BatchHandler receives batches; its result means what a Handler's does.
type BatchHandler func(ctx context.Context, b Batch) error

// Listen runs a durable consumer named name (shared by every replica of the app) on every
// accepted event, <prefix>.events.>, and calls fn with each batch: the gem's Basic drain
// listener, with at-least-once delivery. Use ListenTo for another kind (Changed for only
// fresh events, Siphon for siphoned topics). It returns when ctx is cancelled.
func Listen(ctx context.Context, js jetstream.JetStream, n Names, name string, fn BatchHandler) error {
	return ListenTo(ctx, js, n, Events, ConsumerConfig{Durable: n.Durable(name)}, fn)
}

// ListenTo is Listen for any batch stream kind and with full consumer settings; c.Stream and
// c.FilterSubject are filled in when empty.
func ListenTo(ctx context.Context, js jetstream.JetStream, n Names, k Kind, c ConsumerConfig, fn BatchHandler) error {
	if c.Stream == "" {
		c.Stream = n.Stream(k)
	}
	if c.FilterSubject == "" {
		c.FilterSubject = n.Subject(k, ">")
	}
	prefix := n.Subject(k, "")
	return Consume(ctx, js, n.Subject(DLQ, ""), c, func(ctx context.Context, msg Msg) error {
		events, err := event.Parse(msg.Data())
		if err != nil {
			return Permanent(err)
		}
		topic := strings.TrimPrefix(msg.Subject(), prefix+".")
		return fn(ctx, Batch{Topic: topic, Events: events, Msg: msg})
	})
}
