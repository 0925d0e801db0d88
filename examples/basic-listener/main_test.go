package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// TestListenerPrintsEveryBatch starts the listener before the streams exist, then stores the
// protocol's sample batch B as ingest does: the listener prints one batch per topic.
func TestListenerPrintsEveryBatch(t *testing.T) {
	n := draintest.StartNATS(t)
	_, js := n.Connect(t)
	names := stream.Names{Prefix: "ex"}
	log := slog.New(slog.DiscardHandler)
	out := &draintest.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, js, names, "printer", out, log) }()

	// What ingest does with the protocol's sample batch B: declare the streams, then store one
	// message per topic on <prefix>.events.<topic>.
	if err := stream.Declare(ctx, js, stream.StreamOptions{Prefix: names.Prefix}); err != nil {
		t.Fatal(err)
	}
	for topic, body := range map[string]string{
		"orders":      `[{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1001","t":1559567869210}]`,
		"riders":      `[{"topic":"riders","type":"create","url":"https://riders.example.com/api/riders/77","t":1559567869215}]`,
		"restaurants": `[{"topic":"restaurants","type":"update","url":"https://restaurants.example.com/api/restaurants/9","t":1559567869302}]`,
	} {
		if _, err := js.Publish(ctx, names.Subject(stream.Events, topic), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"batch topic=orders events=1\n  update https://orders.example.com/api/orders/1001 t=1559567869210\n",
		"batch topic=riders events=1\n  create https://riders.example.com/api/riders/77 t=1559567869215\n",
		"batch topic=restaurants events=1\n  update https://restaurants.example.com/api/restaurants/9 t=1559567869302\n",
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := out.String()
		all := true
		for _, w := range want {
			all = all && strings.Contains(got, w)
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener printed %q, want every batch of %q", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v", err)
	}
}
