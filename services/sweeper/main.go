// Command sweeper hands the dirty map's URLs on, in leased batches, to <prefix>.swept and/or a
// webhook, removing them from the map only once the hand-off succeeded. See docs/sweeper.md.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/sweeper/internal/sweeping"
)

const summary = `sweeper takes URLs out of the dirty map every DRAIN_SWEEP_INTERVAL (and on POST /sweep) and
hands them on to <prefix>.swept and/or DRAIN_SWEEP_WEBHOOK_URL. It serves /healthz, /readyz,
/metrics and POST /sweep on DRAIN_ADMIN_ADDR.`

func main() {
	service.Main(config.Sweeper, summary, run)
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	rdb := service.NewRedis(cfg.DrainRedis)
	defer rdb.Close()
	m, err := dirty.New(rdb, cfg.DirtyOptions())
	if err != nil {
		return err
	}
	names := cfg.Streams.Names()

	var (
		nc      *nats.Conn
		js      jetstream.JetStream
		subject string
	)
	if cfg.Sweep.Publish {
		conn := cfg.NATS
		conn.Name, conn.Log = "drain-sweeper", log
		if nc, js, err = stream.Connect(conn); err != nil {
			return err
		}
		defer service.CloseNATS(nc, cfg.ShutdownTimeout, log)
		subject = names.Subject(stream.Swept, "")
		if err := stream.DeclareUntil(ctx, js, cfg.Streams, log); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before NATS came up
			}
			return err
		}
		if cfg.Sweep.Lease >= cfg.Streams.DuplicateWindow {
			log.Warn("DRAIN_SWEEP_LEASE is not shorter than DRAIN_DUPLICATE_WINDOW: a batch taken over from a dead sweeper may be stored twice",
				"lease", cfg.Sweep.Lease, "duplicate_window", cfg.Streams.DuplicateWindow)
		}
	}

	reg := service.NewRegistry()
	s, err := sweeping.New(sweeping.Config{
		Batch:         cfg.Sweep.Batch,
		Lease:         cfg.Sweep.Lease,
		Interval:      cfg.Sweep.Interval,
		Subject:       subject,
		WebhookURL:    cfg.Sweep.WebhookURL,
		ShutdownGrace: cfg.ShutdownTimeout + shutdownMargin,
	}, m, js, reg, log)
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return errors.New("redis: " + err.Error())
		}
		if js != nil {
			return stream.Ready(ctx, nc, js, names)
		}
		return nil
	}
	admin, err := service.StartAdmin(cfg.AdminAddr, reg, ready, map[string]http.Handler{"POST /sweep": s.Handler()}, log)
	if err != nil {
		return err
	}
	log.Info("sweeping", "redis", cfg.DrainRedis.Redacted(), "namespace", cfg.DrainRedis.Namespace,
		"subject", subject, "webhook", cfg.Sweep.WebhookURL != "", "interval", cfg.Sweep.Interval,
		"batch", cfg.Sweep.Batch, "lease", cfg.Sweep.Lease)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	err = service.AwaitStop(ctx, done, cfg.ShutdownTimeout,
		"the sweep batch in progress (its URLs go back to the dirty map and are handed on by the next sweep)", admin.Stopping, log)
	var timeout *service.ShutdownTimeoutError
	if errors.As(err, &timeout) {
		// Let the batch give its URLs back to the map now rather than when its lease expires.
		select {
		case <-done:
		case <-time.After(shutdownMargin + 6*time.Second):
		}
	}
	admin.Stopping()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = admin.Shutdown(sctx)
	return err
}

// shutdownMargin lets a batch in progress retry its hand-off slightly past
// DRAIN_SHUTDOWN_TIMEOUT, so a batch still unfinished when the timeout passes is always
// reported as abandoned (exit 1) before it is given back to the dirty map.
const shutdownMargin = 250 * time.Millisecond
