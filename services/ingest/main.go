// Command ingest is the drain's HTTP receiver: the Routemaster bus POSTs event batches to it and
// it stores them in NATS JetStream (<prefix>.events.<topic>, <prefix>.siphon.<topic>),
// answering 204 only once every message is acknowledged. See docs/ingest.md.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/ingest/internal/receiver"
)

const summary = `ingest receives Routemaster event batches over HTTP(S) and stores them in NATS JetStream.
It serves the bus path (DRAIN_INGEST_PATH) plus /healthz, /readyz and /metrics on DRAIN_INGEST_ADDR.`

func main() {
	service.Main(config.Ingest, summary, run)
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	conn := cfg.NATS
	conn.Name, conn.Log = "drain-ingest", log
	nc, js, err := stream.Connect(conn)
	if err != nil {
		return err
	}
	defer service.CloseNATS(nc, cfg.ShutdownTimeout, log)
	reg := service.NewRegistry()
	srv, err := receiver.New(cfg, js, nc, reg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Ingest.Addr)
	if err != nil {
		return err
	}
	go func() { _ = srv.DeclareStreams(ctx) }()
	err = srv.Serve(ctx, ln)
	if errors.Is(err, context.DeadlineExceeded) {
		// Serve's graceful shutdown ran out of DRAIN_SHUTDOWN_TIMEOUT.
		return &service.ShutdownTimeoutError{Timeout: cfg.ShutdownTimeout,
			Abandoned: "bus requests still in flight (unanswered, so the bus retries them)"}
	}
	return err
}
