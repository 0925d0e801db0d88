// Command filter is the drain's reordering filter: it consumes every accepted batch from NATS
// JetStream, keeps only events newer than any seen for their URL (atomically in Redis, across
// replicas), marks their URLs dirty, optionally busts or warms the cache, and publishes the
// fresh events to <prefix>.changed.<topic>. See docs/filter.md.
package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/filter/internal/filtering"
)

const summary = `filter consumes <prefix>.events.> (durable consumer <prefix>_filter, shared by replicas),
drops stale events with an atomic Redis script, marks fresh URLs dirty, busts or warms the cache
(DRAIN_CACHE_MODE) and publishes fresh events to <prefix>.changed.<topic>.
It serves /healthz, /readyz and /metrics on DRAIN_ADMIN_ADDR (default :9091).`

func main() {
	service.Main(config.Filter, summary, run)
}

// maxBatchPublishes is the most publishes the filter makes for one message, as sized for
// jetstream.WithPublishAsyncMaxPending: a warm request per non-noop event plus a changed message
// per topic, for a batch of 1000 events (the bus sends far smaller ones). A larger batch still
// works: its publishes stall briefly for free slots, and at worst the message is retried.
const maxBatchPublishes = 2 * 1000

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	// Every async publish gets an ack timeout (so a lost PubAck frees its slot instead of
	// wedging the window until a reconnect), and the window fits every handler's publishes.
	nc, js, err := stream.Connect(cfg.NATS, "drain-filter", log,
		jetstream.WithPublishAsyncTimeout(filtering.PublishTimeout),
		jetstream.WithPublishAsyncMaxPending(max(4000, cfg.Consumer.Concurrency*maxBatchPublishes)))
	if err != nil {
		return err
	}
	defer service.CloseNATS(nc, cfg.ShutdownTimeout, log)
	drainRedis := service.NewRedis(cfg.DrainRedis)
	defer drainRedis.Close()
	cacheRedis := drainRedis
	if cfg.CacheRedis.URL != cfg.DrainRedis.URL {
		cacheRedis = service.NewRedis(cfg.CacheRedis)
		defer cacheRedis.Close()
	}
	reg := service.NewRegistry()
	f, err := filtering.New(cfg, js, drainRedis, cacheRedis, reg, log)
	if err != nil {
		return err
	}
	names := stream.Names{Prefix: cfg.Streams.Prefix}
	ready := func(ctx context.Context) error {
		if err := stream.Ready(ctx, nc, js, names, f.ConsumerConfig()); err != nil {
			return err
		}
		if err := drainRedis.Ping(ctx).Err(); err != nil {
			return errors.New("drain redis: " + err.Error())
		}
		return nil
	}
	admin, err := service.StartAdmin(cfg.AdminAddr, reg, ready, nil, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = admin.Shutdown(sctx)
	}()

	// Streams must exist before the consumer; wait for NATS rather than exit while it starts.
	if err := stream.DeclareUntil(ctx, js, names, cfg.Streams, log); err != nil {
		return nil // stopped before NATS came up
	}
	log.Info("filter running", "consumer", names.Durable(filtering.ConsumerName), "cache_mode", string(cfg.CacheMode),
		"dirty", cfg.Dirty, "concurrency", cfg.Consumer.Concurrency, "redis", cfg.DrainRedis.Redacted())

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	return service.AwaitStop(ctx, done, cfg.ShutdownTimeout,
		"event batches still being filtered (unacked, so JetStream redelivers them)", admin.Stopping, log)
}
