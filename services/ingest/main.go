// Command ingest is the drain's HTTP receiver: the Routemaster bus POSTs event batches to it and
// it stores them in NATS JetStream (<prefix>.events.<topic>, <prefix>.siphon.<topic>),
// answering 204 only once every message is acknowledged. See docs/ingest.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/ingest/internal/receiver"
)

const summary = `ingest receives Routemaster event batches over HTTP(S) and stores them in NATS JetStream.
It serves /healthz, /readyz and /metrics on DRAIN_ADMIN_ADDR (default :9090), and the bus path
(DRAIN_INGEST_PATH) plus /healthz and /readyz on DRAIN_INGEST_ADDR, both from the start; batches
get 503 with Retry-After until NATS answers and the streams exist.`

func main() {
	service.Main(config.Ingest, summary, run)
}

// abandoned is what a shutdown timeout leaves unfinished.
const abandoned = "bus requests still in flight (unanswered, so the bus retries them)"

func run(ctx context.Context, l *service.Lifecycle) error {
	cfg, log := l.Config, l.Log
	conn := cfg.NATS
	conn.Name, conn.Log = "drain-ingest", log
	nc, js, err := stream.Connect(conn)
	if err != nil {
		return err
	}
	defer service.CloseNATS(nc, cfg.ShutdownTimeout, log)
	srv, err := receiver.New(cfg, js, nc, l.Registry, log)
	if err != nil {
		return err
	}
	// The bus port opens at once: until NATS answers and the streams exist, batches get 503
	// with Retry-After (the bus resends them) and the port's /healthz answers, so a liveness
	// probe on it never kills an ingest that waits for NATS.
	ln, err := net.Listen("tcp", cfg.Ingest.Addr)
	if err != nil {
		return fmt.Errorf("DRAIN_INGEST_ADDR: listen %s: %w", cfg.Ingest.Addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	return l.Run(ctx, service.Spec{
		Needs:   service.NATSNeeds(nc, js, cfg.Streams.Names()),
		Prepare: srv.DeclareStreams,
		Work: func(context.Context) error {
			err := <-served
			if errors.Is(err, context.DeadlineExceeded) {
				// Serve's graceful shutdown ran out of DRAIN_SHUTDOWN_TIMEOUT.
				return &service.ShutdownTimeoutError{Timeout: cfg.ShutdownTimeout, Abandoned: abandoned}
			}
			return err
		},
		Abandoned: abandoned,
	})
}
