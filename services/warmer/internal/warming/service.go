package warming

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Summary is the one-line description -h prints.
const Summary = "warmer: fetches the resources named by warm requests (<prefix>.warm) into the Redis cache."

// Main runs the warmer service with cfg until ctx is cancelled (SIGTERM): it connects to
// NATS and Redis, declares the streams, serves /healthz, /readyz and /metrics on
// DRAIN_ADMIN_ADDR and consumes warm requests. On cancellation it stops pulling and waits up
// to DRAIN_SHUTDOWN_TIMEOUT for the messages it holds; if some are still unfinished then, it
// returns a *service.ShutdownTimeoutError (exit 1) and they are redelivered to another replica.
func Main(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return run(ctx, cfg, log, service.NewRegistry(), nil)
}

// run is Main with the registry given, and started (when not nil) called with the admin
// address once the consumer is about to run.
func run(ctx context.Context, cfg *config.Config, log *slog.Logger, reg *prometheus.Registry, started func(admin string)) error {
	nc, js, err := stream.Connect(cfg.NATS, "warmer", log)
	if err != nil {
		return err
	}
	defer service.CloseNATS(nc, cfg.ShutdownTimeout, log)
	names := stream.Names{Prefix: cfg.Streams.Prefix}
	if err := stream.DeclareUntil(ctx, js, names, cfg.Streams, log); err != nil {
		return nil // stopped before NATS came up
	}

	rdb := service.NewRedis(cfg.CacheRedis)
	defer rdb.Close()
	client, err := apiclient.New(cfg.Fetch, apiclient.WithRegisterer(reg), apiclient.WithLogger(log))
	if err != nil {
		return err
	}
	c, err := cache.New(cache.Config{
		Redis: rdb, Namespace: cfg.CacheRedis.Namespace, Expiry: cfg.CacheExpiry,
		Fetcher: cache.APIFetcher(client), MaxBody: cfg.Fetch.MaxBody, Registerer: reg,
	})
	if err != nil {
		return err
	}
	w, err := New(Options{
		JS: js, Names: names, Cache: c, QueueName: cfg.Warm.QueueName, Consumer: cfg.Consumer,
		HostConcurrency: cfg.Warm.HostConcurrency, Coalesce: cfg.Warm.Coalesce, Manage: stream.Manage(cfg.Streams.Manage),
		Log: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		if err := stream.Ready(ctx, nc, js, names, w.ConsumerConfig()); err != nil {
			return err
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("cache redis: %w", err)
		}
		return nil
	}
	admin, err := service.StartAdmin(cfg.AdminAddr, reg, ready, nil, log)
	if err != nil {
		return err
	}
	log.Info("warmer running", "consumer", w.Durable(), "concurrency", cfg.Consumer.Concurrency,
		"host_concurrency", cfg.Warm.HostConcurrency, "coalesce", cfg.Warm.Coalesce,
		"cache_redis", cfg.CacheRedis.Redacted(), "circuit", cfg.Fetch.CircuitEnabled)
	if started != nil {
		started(admin.Addr())
	}

	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	err = service.AwaitStop(ctx, done, cfg.ShutdownTimeout,
		"warm requests still in hand (unacked, so JetStream redelivers them)", admin.Stopping, log)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = admin.Shutdown(sctx)
	return err
}
