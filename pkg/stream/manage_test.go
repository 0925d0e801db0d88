package stream_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// DRAIN_STREAM_MANAGE=create (the default) creates what is missing and keeps what exists: an
// operator's edits of a stream and of a consumer survive a restart, and what differs from the
// settings is logged at warn. update puts the settings back.
func TestManageCreateKeepsOperatorEdits(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "keep"}
	ctx := context.Background()
	logs := &draintest.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	s := stream.StreamOptions{Prefix: "keep"} // Manage "": ManageCreate
	if err := stream.DeclareUntil(ctx, js, s, log); err != nil {
		t.Fatal(err)
	}
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Events), Durable: "keep_filter", MaxAckPending: 1000, Log: log}
	if _, err := stream.EnsureConsumer(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}

	// The operator: nats stream edit keep_events --max-bytes 1MiB; nats consumer edit ... --max-pending 50.
	st, err := js.Stream(ctx, n.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	edited := st.CachedInfo().Config
	edited.MaxBytes = 1 << 20
	if _, err := js.UpdateStream(ctx, edited); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, n.Stream(stream.Events), "keep_filter")
	if err != nil {
		t.Fatal(err)
	}
	ccfg := cons.CachedInfo().Config
	ccfg.MaxAckPending = 50
	if _, err := js.UpdateConsumer(ctx, n.Stream(stream.Events), ccfg); err != nil {
		t.Fatal(err)
	}

	// A restart of every service.
	if err := stream.DeclareUntil(ctx, js, s, log); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.EnsureConsumer(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if got := streamConfig(t, js, n.Stream(stream.Events)).MaxBytes; got != 1<<20 {
		t.Errorf("max_bytes after a restart = %d, want the operator's 1 MiB", got)
	}
	if got := consumerInfo(t, js, n.Stream(stream.Events), "keep_filter").Config.MaxAckPending; got != 50 {
		t.Errorf("max_ack_pending after a restart = %d, want the operator's 50", got)
	}
	out := logs.String()
	if !strings.Contains(out, "stream differs from the configured settings") || !strings.Contains(out, "max_bytes 1048576 (configured -1)") {
		t.Errorf("no warning naming the stream's difference:\n%s", out)
	}
	if !strings.Contains(out, "consumer differs from the configured settings") || !strings.Contains(out, "max_ack_pending 50 (configured 1000)") {
		t.Errorf("no warning naming the consumer's difference:\n%s", out)
	}

	// DRAIN_STREAM_MANAGE=update: today's create-or-update.
	s.Manage = stream.ManageUpdate
	if err := stream.DeclareUntil(ctx, js, s, log); err != nil {
		t.Fatal(err)
	}
	cfg.Manage = stream.ManageUpdate
	if _, err := stream.EnsureConsumer(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if got := streamConfig(t, js, n.Stream(stream.Events)).MaxBytes; got != -1 {
		t.Errorf("max_bytes after an update = %d, want -1", got)
	}
	if got := consumerInfo(t, js, n.Stream(stream.Events), "keep_filter").Config.MaxAckPending; got != 1000 {
		t.Errorf("max_ack_pending after an update = %d, want 1000", got)
	}
}

// DRAIN_STREAM_MANAGE=none creates nothing: Declare and Ready name everything missing, a
// consumer waits for its durable consumer, and all goes on once an operator created them.
func TestManageNoneOnlyChecks(t *testing.T) {
	srv := draintest.StartNATS(t)
	nc, js := srv.Connect(t)
	n := stream.Names{Prefix: "none"}
	ctx := context.Background()
	s := stream.StreamOptions{Prefix: "none", Manage: stream.ManageNone}
	err := stream.Declare(ctx, js, s)
	if !errors.Is(err, stream.ErrNotDeclared) {
		t.Fatalf("Declare with nothing there: %v, want ErrNotDeclared", err)
	}
	for _, k := range stream.Kinds {
		if !strings.Contains(err.Error(), "stream "+n.Stream(k)) {
			t.Errorf("Declare's error does not name %s: %v", n.Stream(k), err)
		}
	}
	if !strings.Contains(err.Error(), "bucket none_failures") {
		t.Errorf("Declare's error does not name the bucket: %v", err)
	}
	if l := streamCount(t, js); l != 0 {
		t.Fatalf("%d streams created with DRAIN_STREAM_MANAGE=none", l)
	}
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "none_app", Stage: "swept", Manage: stream.ManageNone}
	err = stream.Ready(ctx, nc, js, n, cfg)
	if err == nil || !strings.Contains(err.Error(), "stream none_events") || !strings.Contains(err.Error(), "bucket none_failures") {
		t.Fatalf("Ready = %v, want everything missing named", err)
	}

	handled := make(chan struct{})
	consumeFor(t, js, n, cfg, func(context.Context, stream.Msg) error {
		close(handled)
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	if l := streamCount(t, js); l != 0 {
		t.Fatalf("Consume created %d streams with DRAIN_STREAM_MANAGE=none", l)
	}

	// The operator creates the streams and the bucket, then the consumer.
	s.Manage = stream.ManageCreate
	if err := stream.Declare(ctx, js, s); err != nil {
		t.Fatal(err)
	}
	err = stream.Ready(ctx, nc, js, n, cfg)
	if err == nil || !strings.Contains(err.Error(), "consumer none_app on none_swept") || strings.Contains(err.Error(), "stream") {
		t.Fatalf("Ready = %v, want only the consumer named", err)
	}
	if _, err := js.Publish(ctx, n.Subject(stream.Swept, ""), []byte("[]")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, n.Stream(stream.Swept), jetstream.ConsumerConfig{Durable: "none_app", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("no message handled once the operator created the consumer")
	}
	if err := stream.Ready(ctx, nc, js, n, cfg); err != nil {
		t.Errorf("Ready = %v once everything exists", err)
	}
}

// With NATS unreachable, the declaration's log names the servers it cannot reach instead of
// the publish's "outbound buffer limit exceeded".
func TestUnreachableNATSIsNamed(t *testing.T) {
	srv := draintest.StartNATS(t)
	srv.Stop()
	logs := &draintest.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	nc, js, err := stream.Connect(stream.ConnectOptions{URL: srv.URL(), Name: "unreachable", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_ = stream.DeclareUntil(ctx, js, stream.StreamOptions{Prefix: "u"}, log)
	out := logs.String()
	addr := strings.TrimPrefix(srv.URL(), "nats://")
	if !strings.Contains(out, "cannot reach nats://"+addr) || strings.Contains(out, "outbound buffer limit exceeded") {
		t.Fatalf("log does not name %s:\n%s", addr, out)
	}
	if err := stream.Ready(context.Background(), nc, js, stream.Names{Prefix: "u"}); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Ready = %v, want it to name %s", err, addr)
	}
}

func streamConfig(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config
}

func streamCount(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	l := js.StreamNames(context.Background())
	n := 0
	for range l.Name() {
		n++
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
