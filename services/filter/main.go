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

	"github.com/nats-io/nats.go"

	"github.com/routemaster-drain/drain/config"
	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/services/filter/filter"
	"github.com/routemaster-drain/drain/stream"
)

const summary = `filter consumes <prefix>.events.> (durable consumer <prefix>_filter, shared by replicas),
drops stale events with an atomic Redis script, marks fresh URLs dirty, busts or warms the cache
(DRAIN_CACHE_MODE) and publishes fresh events to <prefix>.changed.<topic>.
It serves /healthz, /readyz and /metrics on DRAIN_ADMIN_ADDR (default :9091).`

func main() {
	service.Main(config.Filter, summary, run)
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	nc, js, err := stream.Connect(cfg.NATS, "drain-filter", log)
	if err != nil {
		return err
	}
	defer closeNATS(nc, cfg.ShutdownTimeout, log)
	drainRedis := service.NewRedis(cfg.DrainRedis)
	defer drainRedis.Close()
	cacheRedis := drainRedis
	if cfg.CacheRedis.URL != cfg.DrainRedis.URL {
		cacheRedis = service.NewRedis(cfg.CacheRedis)
		defer cacheRedis.Close()
	}
	reg := service.NewRegistry()
	f, err := filter.New(cfg, js, drainRedis, cacheRedis, reg, log)
	if err != nil {
		return err
	}
	names := stream.Names{Prefix: cfg.Streams.Prefix}
	ready := func(ctx context.Context) error {
		if err := stream.Ready(ctx, nc, js, names); err != nil {
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
	for {
		err := stream.Declare(ctx, js, names, cfg.Streams)
		if err == nil {
			break
		}
		log.Warn("declaring streams failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	log.Info("filter running", "consumer", names.Durable(filter.ConsumerName), "cache_mode", string(cfg.CacheMode),
		"dirty", cfg.Dirty, "concurrency", cfg.Consumer.Concurrency, "redis", cfg.DrainRedis.Redacted())

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	admin.Stopping()
	log.Info("stopping: finishing in-flight messages", "timeout", cfg.ShutdownTimeout)
	select {
	case err := <-done:
		return err
	case <-time.After(cfg.ShutdownTimeout):
		log.Warn("in-flight messages not finished in time; they will be redelivered")
		return nil
	}
}

// closeNATS flushes what the connection still holds and closes it, waiting at most timeout.
func closeNATS(nc *nats.Conn, timeout time.Duration, log *slog.Logger) {
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	deadline := time.Now().Add(timeout)
	for !nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !nc.IsClosed() {
		log.Warn("nats drain timed out; closing")
		nc.Close()
	}
}
