package stream_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/config"
	"github.com/routemaster-drain/drain/stream"
)

// An app subscribes its own durable consumer to every accepted batch: the gem's Basic drain.
func ExampleListen() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true})
	go srv.Start()
	srv.ReadyForConnections(5 * time.Second)
	defer srv.Shutdown()

	nc, js, _ := stream.Connect(config.NATS{URL: srv.ClientURL()}, "example", slog.Default())
	defer nc.Close()
	names := stream.Names{Prefix: "routemaster"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = stream.Declare(ctx, js, names, config.Default(config.Filter).Streams)

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
