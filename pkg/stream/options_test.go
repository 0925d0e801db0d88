package stream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/stream"
)

// TestStreamOptionsDefaults: the zero StreamOptions declares what the Default* constants say.
func TestStreamOptionsDefaults(t *testing.T) {
	var zero stream.StreamOptions
	if got := zero.Names().Prefix; got != stream.DefaultPrefix {
		t.Errorf("Names().Prefix = %q, want %q", got, stream.DefaultPrefix)
	}
	ev := stream.StreamConfig(zero, stream.Events)
	if ev.Name != "routemaster_events" || ev.MaxAge != stream.DefaultMaxAge || ev.Replicas != stream.DefaultReplicas ||
		ev.Duplicates != stream.DefaultDuplicateWindow || ev.Storage != jetstream.FileStorage || ev.Discard != jetstream.DiscardOld {
		t.Errorf("events stream of the zero options = %+v", ev)
	}
	dlq := stream.StreamConfig(zero, stream.DLQ)
	if dlq.MaxAge != 0 || dlq.MaxBytes != stream.DefaultDLQMaxBytes || dlq.Discard != jetstream.DiscardNew {
		t.Errorf("dlq stream of the zero options = %+v", dlq)
	}
	mem := stream.StreamConfig(stream.StreamOptions{Prefix: "p", MemoryStorage: true, Replicas: 3, DLQMaxAge: time.Hour}, stream.DLQ)
	if mem.Name != "p_dlq" || mem.Storage != jetstream.MemoryStorage || mem.Replicas != 3 || mem.MaxAge != time.Hour {
		t.Errorf("dlq stream = %+v", mem)
	}
}

// TestStreamOptionsValidate: Declare refuses bad options before talking to the server.
func TestStreamOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o    stream.StreamOptions
		want string
	}{
		{stream.StreamOptions{Prefix: "a.b"}, "Prefix"},
		{stream.StreamOptions{Replicas: 7}, "Replicas"},
		{stream.StreamOptions{MaxAge: -time.Second}, "MaxAge"},
		{stream.StreamOptions{MaxAge: time.Minute}, "must not exceed MaxAge"},
		{stream.StreamOptions{DLQMaxAge: time.Minute}, "must not exceed DLQMaxAge"},
		{stream.StreamOptions{DLQMaxBytes: -1}, "DLQMaxBytes"},
	} {
		// A nil JetStream is never used: validation fails first.
		err := stream.Declare(context.Background(), nil, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Declare(%+v) = %v, want an error about %s", tc.o, err, tc.want)
		}
		if err := stream.DeclareUntil(context.Background(), nil, tc.o, nil); err == nil {
			t.Errorf("DeclareUntil(%+v) = nil, want the validation error", tc.o)
		}
	}
}

// TestConnectOptionsValidate: a client certificate needs its key.
func TestConnectOptionsValidate(t *testing.T) {
	_, _, err := stream.Connect(stream.ConnectOptions{TLSCert: "cert.pem"})
	if err == nil || !strings.Contains(err.Error(), "TLSCert and TLSKey") {
		t.Errorf("Connect with a certificate and no key = %v", err)
	}
}

// TestConsumerConfigValidate: a consumer needs its stream and durable name.
func TestConsumerConfigValidate(t *testing.T) {
	if _, err := stream.EnsureConsumer(context.Background(), nil, stream.ConsumerConfig{Durable: "d"}); err == nil || !strings.Contains(err.Error(), "Stream is required") {
		t.Errorf("EnsureConsumer without a stream = %v", err)
	}
	if _, err := stream.EnsureConsumer(context.Background(), nil, stream.ConsumerConfig{Stream: "s"}); err == nil || !strings.Contains(err.Error(), "Durable is required") {
		t.Errorf("EnsureConsumer without a durable = %v", err)
	}
}
