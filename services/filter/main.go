// Command filter is the drain's reordering filter: it consumes every accepted batch from NATS
// JetStream, keeps only events newer than any seen for their URL (atomically in Redis, across
// replicas), marks their URLs dirty, optionally busts or warms the cache, and publishes the
// fresh events to <prefix>.changed.<topic>. See docs/filter.md.
package main

import (
	"context"

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
// stream.ConnectOptions.PublishAsyncMaxPending: a warm request per non-noop event plus a
// changed message per topic, for a batch of 1000 events (the bus sends far smaller ones). A
// larger batch still works: its publishes stall briefly for free slots, and at worst the
// message is retried.
const maxBatchPublishes = 2 * 1000

func run(ctx context.Context, l *service.Lifecycle) error {
	cfg, log := l.Config, l.Log
	// Every async publish gets an ack timeout (so a lost PubAck frees its slot instead of
	// wedging the window until a reconnect), and the window fits every handler's publishes.
	conn := cfg.NATS
	conn.Name, conn.Log = "drain-filter", log
	conn.PublishAsyncTimeout = filtering.PublishTimeout
	conn.PublishAsyncMaxPending = max(4000, cfg.Consumer.Concurrency*maxBatchPublishes)
	nc, js, err := stream.Connect(conn)
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
	f, err := filtering.New(cfg, js, drainRedis, cacheRedis, l.Registry, log)
	if err != nil {
		return err
	}
	names := cfg.Streams.Names()
	needs := append(service.NATSNeeds(nc, js, names, f.ConsumerConfig()), service.RedisNeed("redis", drainRedis))
	if cacheRedis != drainRedis && cfg.CacheMode != config.CacheOff {
		needs = append(needs, service.RedisNeed("cache_redis", cacheRedis))
	}
	return l.Run(ctx, service.Spec{
		Needs: needs,
		// Streams must exist before the consumer.
		Prepare: func(ctx context.Context) error { return stream.DeclareUntil(ctx, js, cfg.Streams, log) },
		Work: func(ctx context.Context) error {
			log.Info("filter running", "consumer", names.Durable(filtering.ConsumerName), "cache_mode", string(cfg.CacheMode),
				"dirty", cfg.Dirty, "concurrency", cfg.Consumer.Concurrency, "redis", cfg.DrainRedis.Redacted())
			return f.Run(ctx)
		},
		Abandoned: "event batches still being filtered (unacked, so JetStream redelivers them)",
	})
}
