package receiver_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/ingest/internal/receiver"
)

// ExampleNew wires a receiver by hand (the ingest binary does the same inside the service
// lifecycle, with an admin server in front): connect, declare the streams (retrying until NATS
// answers), serve until SIGTERM, then drain NATS.
func ExampleNew() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := config.Load(config.Ingest, os.Environ())
	if err != nil {
		log.Error("config", "err", err)
		return
	}
	conn := cfg.NATS // NATS_*: the server, credentials and TLS files
	conn.Name, conn.Log = "drain-ingest", log
	nc, js, err := stream.Connect(conn)
	if err != nil {
		log.Error("nats", "err", err)
		return
	}
	defer nc.Drain()
	srv, err := receiver.New(cfg, js, nc, prometheus.NewRegistry(), log)
	if err != nil {
		log.Error("ingest", "err", err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := srv.DeclareStreams(ctx); err != nil {
		return // SIGTERM before NATS answered
	}
	ln, err := net.Listen("tcp", cfg.Ingest.Addr)
	if err != nil {
		log.Error("listen", "err", err)
		return
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("serve", "err", err)
	}
}
