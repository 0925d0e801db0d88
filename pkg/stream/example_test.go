package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/event"
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

// A handler's result is an error value: callers and tests read it back with errors.As.
func ExampleRetryAfter() {
	handle := func(context.Context, stream.Msg) error {
		return stream.RetryAfter(time.Minute, errors.New("origin answered 429"))
	}
	err := handle(context.Background(), nil)
	var retry *stream.RetryError
	if errors.As(err, &retry) {
		fmt.Println("retry in", retry.Delay, "because", retry.Err)
	}
	// Output: retry in 1m0s because origin answered 429
}

// The first result in an error's chain decides: a Transient wrapping a Permanent waits out
// the outage instead of dead-lettering.
func ExampleTransient() {
	err := stream.Transient(fmt.Errorf("publish changed: %w", stream.Permanent(errors.New("bad batch"))))
	var transient *stream.TransientError
	fmt.Println(errors.As(err, &transient), err)
	// Output: true publish changed: bad batch
}

// Every stage classifies its Redis failures with RedisFailure: an outage (here the server
// stopped) waits without spending the delivery budget; a reply the message's key caused is a
// budgeted retry.
func ExampleRedisFailure() {
	scope := draintest.NewScope()
	defer scope.Close()
	srv := draintest.StartRedis(scope)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer rdb.Close()
	ctx := context.Background()

	rdb.Set(ctx, "state", "a string", 0)
	var retry *stream.RetryError
	err := stream.RedisFailure(rdb.HGet(ctx, "state", "t").Err())
	fmt.Println("WRONGTYPE is a retry:", errors.As(err, &retry))

	srv.Stop()
	var transient *stream.TransientError
	err = stream.RedisFailure(rdb.HGet(ctx, "state", "t").Err())
	fmt.Println("a stopped server is transient:", errors.As(err, &transient))
	// Output:
	// WRONGTYPE is a retry: true
	// a stopped server is transient: true
}

// A consumer dead-letters a message it cannot handle; an operator (or a program) lists the
// dead letters and replays them once the cause is fixed.
func ExampleDeadLetters() {
	scope := draintest.NewScope()
	defer scope.Close()
	srv := draintest.StartNATS(scope)
	nc, js, _ := stream.Connect(stream.ConnectOptions{URL: srv.URL(), Name: "example"})
	defer nc.Close()
	streams := stream.StreamOptions{Prefix: "routemaster"}
	names := streams.Names()
	ctx := context.Background()
	_ = stream.Declare(ctx, js, streams)

	subject := names.Subject(stream.Events, "orders")
	body := []byte(`[{"topic":"orders","type":"create","url":"https://orders.example.com/1","t":1}]`)
	_ = stream.PublishAll(ctx, js, 5*time.Second, []*nats.Msg{{Subject: subject, Data: body}})

	// An app's consumer that refuses the batch for good.
	cctx, cancel := context.WithCancel(ctx)
	deadLettered := make(chan string, 10)
	cfg := stream.ConsumerConfig{Stream: names.Stream(stream.Events), Durable: names.Durable("audit"), Stage: "audit",
		Log:     slog.New(slog.DiscardHandler),
		Observe: func(outcome string, _ uint64, _ time.Duration) { deadLettered <- outcome }}
	go stream.Consume(cctx, js, names.Subject(stream.DLQ, ""), cfg, func(context.Context, stream.Msg) error {
		return stream.Permanent(errors.New("orders.example.com is not allowed"))
	})
	<-deadLettered
	cancel()

	dlq, _ := stream.OpenDeadLetters(ctx, js, names)
	letters, _ := dlq.List(ctx, stream.Selection{Stage: "audit"})
	for _, d := range letters {
		fmt.Println(d.Seq, d.Stage, d.OrigSubject, d.OrigStream, d.OrigSeq, d.Error)
	}
	_ = dlq.Replay(ctx, stream.Selection{}, func(r stream.Replayed) error {
		fmt.Println("replayed", r.Letter.Seq, "to", r.Stream, "seq", r.StreamSeq, r.Err)
		return nil
	})
	left, _ := dlq.Count(ctx, stream.Selection{})
	fmt.Println(left, "left")
	// Output:
	// 1 audit routemaster.events.orders routemaster_events 1 orders.example.com is not allowed
	// replayed 1 to routemaster_events seq 2 <nil>
	// 0 left
}

// A topic's events too large for one NATS message are split into valid batches that fit.
func ExampleSplitBatch() {
	events, _ := event.Parse([]byte(`[` +
		`{"topic":"orders","type":"create","url":"https://orders.example.com/1","t":1},` +
		`{"topic":"orders","type":"create","url":"https://orders.example.com/2","t":2},` +
		`{"topic":"orders","type":"create","url":"https://orders.example.com/3","t":3}]`))
	parts, err := stream.SplitBatch(events, 160)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range parts {
		batch, _ := event.Parse(p)
		fmt.Println(len(p), "bytes,", len(batch), "events")
	}
	// Output:
	// 157 bytes, 2 events
	// 79 bytes, 1 events
}
