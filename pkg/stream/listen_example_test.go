package stream_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// exampleJetStream starts a private nats-server with the drain's streams declared, and
// returns its JetStream context, the stream names and the function that stops it.
func exampleJetStream() (jetstream.JetStream, stream.Names, func()) {
	scope := draintest.NewScope()
	srv := draintest.StartNATS(scope)
	nc, js, err := stream.Connect(stream.ConnectOptions{URL: srv.URL(), Name: "example"})
	if err != nil {
		panic(err)
	}
	streams := stream.StreamOptions{}
	if err := stream.Declare(context.Background(), js, streams); err != nil {
		panic(err)
	}
	return js, streams.Names(), func() { nc.Close(); scope.Close() }
}

// store does what ingest does with an accepted batch of one topic.
func store(js jetstream.JetStream, subject, body string) {
	if _, err := js.Publish(context.Background(), subject, []byte(body), jetstream.WithMsgID(stream.MsgID(subject, []byte(body)))); err != nil {
		panic(err)
	}
}

// Several listeners: each name is a durable consumer of its own and gets every batch (the
// gem's app.subscribe called twice); replicas started with the same name share one.
func ExampleListen_several() {
	js, names, stop := exampleJetStream()
	defer stop()
	store(js, names.Subject(stream.Events, "orders"), `[{"topic":"orders","type":"update","url":"https://orders.example.com/1","t":5}]`)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for _, name := range []string{"search-indexer", "audit-log"} {
		wg.Add(1)
		go func() {
			var once sync.Once
			_ = stream.Listen(ctx, js, names, name, func(_ context.Context, b stream.Batch) error {
				mu.Lock()
				got = append(got, fmt.Sprintf("%s got %s %s", name, b.Events[0].Type, b.Events[0].URL))
				mu.Unlock()
				once.Do(wg.Done)
				return nil
			})
		}()
	}
	wg.Wait()
	slices.Sort(got)
	for _, line := range got {
		fmt.Println(line)
	}
	// Output:
	// audit-log got update https://orders.example.com/1
	// search-indexer got update https://orders.example.com/1
}

// Siphon: ingest routes the topics in DRAIN_SIPHON_TOPICS to <prefix>.siphon.<topic>, never
// filtered; an app consumes them with ListenTo (the gem's Middleware::Siphon).
func ExampleListenTo_siphon() {
	js, names, stop := exampleJetStream()
	defer stop()
	store(js, names.Subject(stream.Siphon, "rider_locations"),
		`[{"topic":"rider_locations","type":"update","url":"https://riders.example.com/77/location","t":9,"data":{"lat":51.5}}]`)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go stream.ListenTo(ctx, js, names, stream.Siphon, stream.ConsumerConfig{Durable: names.Durable("locations")},
		func(_ context.Context, b stream.Batch) error {
			fmt.Println(b.Topic, b.Events[0].URL, string(b.Events[0].Data))
			close(done)
			return nil
		})
	<-done
	// Output: rider_locations https://riders.example.com/77/location {"lat":51.5}
}
