// Command basiclistener is the gem's Basic drain rebuilt on the drain: it adds a durable
// JetStream consumer on <prefix>.events.> (every batch ingest accepted) and prints each batch,
// one line per event. Run several copies with the same LISTENER_NAME and they share the work;
// stop one and the others, or the next start, pick up where it left off (at-least-once).
//
//	NATS_URL=nats://127.0.0.1:4222 DRAIN_PREFIX=routemaster go run .
//
// Environment: NATS_URL, NATS_CREDS, DRAIN_PREFIX (as the services), LISTENER_NAME (durable
// consumer name, default basic-listener). It waits for ingest to declare the streams.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/stream"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// An app reads the variables it shares with the services itself; empty fields take the
	// stream package's defaults (stream.DefaultURL, stream.DefaultPrefix), as the services'.
	nc, js, err := stream.Connect(stream.ConnectOptions{
		URL: os.Getenv("NATS_URL"), Creds: os.Getenv("NATS_CREDS"), Name: "basic-listener", Log: log,
	})
	if err != nil {
		log.Error("connect", "err", err)
		os.Exit(1)
	}
	defer nc.Drain()
	names := stream.StreamOptions{Prefix: os.Getenv("DRAIN_PREFIX")}.Names()
	if err := run(ctx, js, names, env("LISTENER_NAME", "basic-listener"), os.Stdout, log); err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run listens until ctx is cancelled, printing every batch to out. It retries while the
// events stream does not exist yet (ingest declares it at start).
func run(ctx context.Context, js jetstream.JetStream, names stream.Names, name string, out io.Writer, log *slog.Logger) error {
	printBatch := func(_ context.Context, b stream.Batch) error {
		fmt.Fprintf(out, "batch topic=%s events=%d\n", b.Topic, len(b.Events))
		for _, e := range b.Events {
			fmt.Fprintf(out, "  %s %s t=%d\n", e.Type, e.URL, e.T)
		}
		return nil // ack; return stream.Retry(err) to try again later
	}
	for {
		err := stream.Listen(ctx, js, names, name, printBatch)
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		log.Info("waiting for ingest to declare the streams", "stream", names.Stream(stream.Events))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}
