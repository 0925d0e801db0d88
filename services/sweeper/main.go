// Command sweeper hands the dirty map's URLs on, in leased batches, to <prefix>.swept and/or a
// webhook, removing them from the map only once the hand-off succeeded. See docs/sweeper.md.
package main

import (
	"context"
	"net/http"
	"time"

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

func run(ctx context.Context, l *service.Lifecycle) error {
	cfg, log := l.Config, l.Log
	rdb := service.NewRedis(cfg.DrainRedis)
	defer rdb.Close()
	m, err := dirty.New(rdb, cfg.DirtyOptions())
	if err != nil {
		return err
	}
	names := cfg.Streams.Names()
	needs := []service.Need{service.RedisNeed("redis", rdb)}

	var (
		js      jetstream.JetStream
		subject string
		prepare func(context.Context) error
	)
	// NATS carries the swept batches and, with a webhook, the dead letters of the URLs it
	// keeps refusing.
	if cfg.Sweep.Publish || cfg.Sweep.WebhookURL != "" {
		conn := cfg.NATS
		conn.Name, conn.Log = "drain-sweeper", log
		nc, njs, err := stream.Connect(conn)
		if err != nil {
			return err
		}
		defer service.CloseNATS(nc, cfg.ShutdownTimeout, log)
		js = njs
		needs = append(service.NATSNeeds(nc, js, names), needs...)
		prepare = func(ctx context.Context) error { return stream.DeclareUntil(ctx, js, cfg.Streams, log) }
	}
	if cfg.Sweep.Publish {
		subject = names.Subject(stream.Swept, "")
		if cfg.Sweep.Lease >= cfg.Streams.DuplicateWindow {
			log.Warn("DRAIN_SWEEP_LEASE is not shorter than DRAIN_DUPLICATE_WINDOW: a batch taken over from a dead sweeper may be stored twice",
				"lease", cfg.Sweep.Lease, "duplicate_window", cfg.Streams.DuplicateWindow)
		}
	}

	s, err := sweeping.New(sweeping.Config{
		Batch:             cfg.Sweep.Batch,
		Lease:             cfg.Sweep.Lease,
		Interval:          cfg.Sweep.Interval,
		Subject:           subject,
		WebhookURL:        cfg.Sweep.WebhookURL,
		ShutdownGrace:     cfg.ShutdownTimeout + shutdownMargin,
		DeadLetters:       names.Subject(stream.DLQ, "sweep"),
		MaxRefusals:       cfg.Consumer.MaxDeliver,
		RefusalBackoff:    cfg.Consumer.RetryBackoff,
		RefusalBackoffMax: cfg.Consumer.RetryBackoffMax,
		Namespace:         cfg.DrainRedis.Namespace,
	}, m, rdb, js, l.Registry, log)
	if err != nil {
		return err
	}
	return l.Run(ctx, service.Spec{
		Needs:   needs,
		Prepare: prepare,
		Routes:  map[string]http.Handler{"POST /sweep": s.Handler()},
		Work: func(ctx context.Context) error {
			log.Info("sweeping", "redis", cfg.DrainRedis.Redacted(), "namespace", cfg.DrainRedis.Namespace,
				"subject", subject, "webhook", cfg.Sweep.WebhookURL != "", "interval", cfg.Sweep.Interval,
				"batch", cfg.Sweep.Batch, "lease", cfg.Sweep.Lease)
			return s.Run(ctx)
		},
		Abandoned: "the sweep batch in progress (its URLs go back to the dirty map and are handed on by the next sweep)",
		// Let the batch give its URLs back to the map now rather than when its lease expires.
		Linger: shutdownMargin + 6*time.Second,
	})
}

// shutdownMargin lets a batch in progress retry its hand-off slightly past
// DRAIN_SHUTDOWN_TIMEOUT, so a batch still unfinished when the timeout passes is always
// reported as abandoned (exit 1) before it is given back to the dirty map.
const shutdownMargin = 250 * time.Millisecond
