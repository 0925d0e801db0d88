package stream_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// TestDeclareUntilWaitsForNATS starts the declaration while NATS is down: it keeps retrying,
// and the streams exist soon after NATS comes up.
func TestDeclareUntilWaitsForNATS(t *testing.T) {
	srv := draintest.StartNATS(t)
	srv.Stop()
	nc, err := nats.Connect(srv.URL(), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	n := stream.Names{Prefix: "rmdecl"}
	done := make(chan error, 1)
	go func() {
		done <- stream.DeclareUntil(context.Background(), js, stream.StreamOptions{Prefix: n.Prefix}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	select {
	case err := <-done:
		t.Fatalf("DeclareUntil returned %v while NATS was down", err)
	case <-time.After(600 * time.Millisecond):
	}
	srv.Start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("DeclareUntil did not succeed after NATS came up")
	}
	if err := stream.Ready(context.Background(), nc, js, n); err != nil {
		t.Errorf("Ready after DeclareUntil = %v", err)
	}
}

// TestDeclareUntilStopsWithContext returns ctx's error when NATS never comes.
func TestDeclareUntilStopsWithContext(t *testing.T) {
	srv := draintest.StartNATS(t)
	srv.Stop()
	nc, err := nats.Connect(srv.URL(), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = stream.DeclareUntil(ctx, js, stream.StreamOptions{Prefix: "rmdecl"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned %v after the context ended", d)
	}
}

// Two services declaring the streams at the same moment on a freshly formed 3-node cluster
// (R3) are both done within 10 s: concurrent creates of one stream on a cluster can both hang,
// so Declare bounds each call and looks the stream up again.
func TestDeclareRacingOnACluster(t *testing.T) {
	c := draintest.StartNATSCluster(t, 3)
	o := stream.StreamOptions{Prefix: "race", Replicas: 3}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for _, n := range c.Nodes[:2] {
		_, js := n.Connect(t)
		go func() { errs <- stream.Declare(ctx, js, o) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("declare racing on a cluster: %v", err)
		}
	}
}
