// Command ingest is the drain's HTTP receiver: the Routemaster bus POSTs event batches to it and
// it stores them in NATS JetStream (<prefix>.events.<topic>, <prefix>.siphon.<topic>),
// answering 204 only once every message is acknowledged. See docs/ingest.md.
package main

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/routemaster-drain/drain/config"
	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/services/ingest/ingest"
	"github.com/routemaster-drain/drain/stream"
)

const summary = `ingest receives Routemaster event batches over HTTP(S) and stores them in NATS JetStream.
It serves the bus path (DRAIN_INGEST_PATH) plus /healthz, /readyz and /metrics on DRAIN_INGEST_ADDR.`

func main() {
	service.Main(config.Ingest, summary, run)
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	nc, js, err := stream.Connect(cfg.NATS, "drain-ingest", log)
	if err != nil {
		return err
	}
	defer drain(nc, cfg.ShutdownTimeout, log)
	reg := service.NewRegistry()
	srv, err := ingest.New(cfg, js, nc, reg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Ingest.Addr)
	if err != nil {
		return err
	}
	go func() { _ = srv.DeclareStreams(ctx) }()
	return srv.Serve(ctx, ln)
}

// drain flushes what the connection still holds and closes it, waiting at most timeout.
func drain(nc *nats.Conn, timeout time.Duration, log *slog.Logger) {
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
