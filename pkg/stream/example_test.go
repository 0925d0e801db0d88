package stream_test

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// An app subscribes its own durable consumer to every accepted batch: the gem's Basic drain.
func ExampleListen() {
	scope := draintest.NewScope()
	defer scope.Close()
	srv := draintest.StartNATS(scope)

	nc, js, _ := stream.Connect(stream.ConnectOptions{URL: srv.URL(), Name: "example"})
	defer nc.Close()
	streams := stream.StreamOptions{} // the defaults: prefix "routemaster", file storage, 72h
	names := streams.Names()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = stream.Declare(ctx, js, streams)

	// What ingest does with an accepted batch.
	body := []byte(`[{"topic":"orders","type":"create","url":"https://orders.example.com/1","t":1}]`)
	subject := names.Subject(stream.Events, "orders")
	m := nats.NewMsg(subject)
	m.Data = body
	_, _ = js.PublishMsg(ctx, m, jetstream.WithMsgID(stream.MsgID(subject, body)))

	done := make(chan struct{})
	go stream.Listen(ctx, js, names, "my-app", func(_ context.Context, b stream.Batch) error {
		for _, e := range b.Events {
			fmt.Println(b.Topic, e.Type, e.URL)
		}
		close(done)
		return nil // ack
	})
	<-done
	// Output: orders create https://orders.example.com/1
}
