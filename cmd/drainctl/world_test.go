package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

const worldPrefix = "wld"

// world is a small deployment for status and the console: private NATS and Redis, the
// drain's streams, a filter consumer with a backlog and messages held unacknowledged, a warm
// consumer with a backlog, dead letters of two stages stored by stream.DeadLetter, dirty URLs
// one of them leased, and the admin addresses of three services (a ready warmer whose circuit
// breaker for 127.0.0.1 is open, a filter that is not ready, a sweeper that does not answer).
type world struct {
	nats  *draintest.NATS
	env   []string
	js    jetstream.JetStream
	names stream.Names
	rdb   *redis.Client
	dirty *dirty.Map
	// orders is the subject the filter's dead letters came from.
	orders string
}

// The world's numbers, as status must report them.
const (
	worldFilterPending    = 5 // 5 orders + 2 bad batches, 2 of them held
	worldFilterAckPending = 2
	worldWarmPending      = 1
	worldDeadFilter       = 2
	worldDeadWarm         = 1
	worldDirty            = 3
	worldLeased           = 1
)

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := draintest.StartNATS(t)
	r := draintest.StartRedis(t)
	_, js := srv.Connect(t)
	streams := stream.StreamOptions{Prefix: worldPrefix}
	w := &world{nats: srv, js: js, names: streams.Names(), rdb: r.Client(t, 0)}
	w.orders = w.names.Subject(stream.Events, "orders")
	if err := stream.Declare(ctx, js, streams); err != nil {
		t.Fatal(err)
	}
	filter := w.consumer(t, stream.Events, "filter", "")
	w.consumer(t, stream.Warm, "warm_routemaster", "")
	for i := range 5 {
		w.publish(t, w.orders, fmt.Sprintf(`[{"topic":"orders","type":"update","url":"https://o.example.com/%d","t":%d}]`, i, i+1))
	}
	bad := w.names.Subject(stream.Events, "bad")
	w.publish(t, bad, `[{"topic":"bad","type":"update","url":"https://bad.example.com/1","t":1}]`)
	w.publish(t, bad, `[{"topic":"bad","type":"update","url":"https://bad.example.com/2","t":2}]`)
	w.publish(t, w.names.Subject(stream.Warm, ""), `{"url":"https://o.example.com/9","type":"update","t":9,"index":1}`)

	// Dead letters as the consumers store them: two batches of topic bad for the filter, the
	// warm request for the warmer, each taken by a throwaway consumer.
	w.deadLetter(t, stream.Events, bad, "filter", errors.New("host not allowed: bad.example.com"), 1)
	w.deadLetter(t, stream.Events, bad, "filter", errors.New("host not allowed: bad.example.com"), 1)
	w.deadLetter(t, stream.Warm, w.names.Subject(stream.Warm, ""), "warm", errors.New("GET https://o.example.com/9: 503 Service Unavailable"), 20)

	// The filter holds two messages: delivered, not acknowledged.
	batch, err := filter.FetchNoWait(worldFilterAckPending)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for range batch.Messages() {
		held++
	}
	if held != worldFilterAckPending || batch.Error() != nil {
		t.Fatalf("filter fetched %d messages: %v", held, batch.Error())
	}

	m, err := dirty.New(w.rdb, dirty.Options{Namespace: "ns1"})
	if err != nil {
		t.Fatal(err)
	}
	w.dirty = m
	for i := range worldDirty {
		if _, err := w.dirty.Mark(ctx, fmt.Sprintf("https://o.example.com/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if urls, _, err := w.dirty.Lease(ctx, worldLeased, time.Hour); err != nil || len(urls) != worldLeased {
		t.Fatalf("lease: %v %v", urls, err)
	}

	w.env = []string{"NATS_URL=" + srv.URL(), "DRAIN_PREFIX=" + worldPrefix, "ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, "ns1"),
		"DRAIN_STATUS_ADMIN_URLS=warmer=http://" + warmerAdmin(t) + ",filter=http://" + unreadyAdmin(t) + ",sweeper=http://" + draintest.FreeAddr(t)}
	return w
}

// consumer creates the durable consumer <prefix>_<name> on kind's stream; what it is handed
// stays unacknowledged for ten minutes.
func (w *world) consumer(t *testing.T, kind stream.Kind, name, filter string) jetstream.Consumer {
	t.Helper()
	c, err := stream.EnsureConsumer(ctx, w.js, stream.ConsumerConfig{Stream: w.names.Stream(kind),
		Durable: w.names.Durable(name), FilterSubject: filter, AckWait: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) publish(t *testing.T, subject, body string) {
	t.Helper()
	if _, err := w.js.Publish(ctx, subject, []byte(body), jetstream.WithMsgID(stream.MsgID(subject, []byte(body)))); err != nil {
		t.Fatal(err)
	}
}

// deadLetter takes the next message on subject with a throwaway consumer and stores it as a
// dead letter of stage with stream.DeadLetter, as a failing consumer does.
func (w *world) deadLetter(t *testing.T, kind stream.Kind, subject, stage string, cause error, deliveries uint64) {
	t.Helper()
	c := w.consumer(t, kind, "maker", subject)
	defer func() {
		if err := w.js.DeleteConsumer(ctx, w.names.Stream(kind), w.names.Durable("maker")); err != nil {
			t.Fatal(err)
		}
	}()
	msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// The maker consumer is recreated each time and starts at the stream's first message:
	// skip the ones already dead-lettered.
	for {
		md, err := msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if !w.deadLettered(t, md.Stream, md.Sequence.Stream) {
			break
		}
		if err := msg.Ack(); err != nil {
			t.Fatal(err)
		}
		if msg, err = c.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.DeadLetter(ctx, w.js, w.names.Subject(stream.DLQ, stage), msg, cause, deliveries); err != nil {
		t.Fatal(err)
	}
	if err := msg.Ack(); err != nil {
		t.Fatal(err)
	}
}

// deadLettered reports whether the message at seq of streamName is in the DLQ.
func (w *world) deadLettered(t *testing.T, streamName string, seq uint64) bool {
	t.Helper()
	dlq, err := stream.OpenDeadLetters(ctx, w.js, w.names)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	err = dlq.Each(ctx, stream.Selection{}, func(m stream.DLQMsg) error {
		found = found || (m.OrigStream == streamName && m.OrigSeq == seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func (w *world) dlqCount(t *testing.T) uint64 {
	t.Helper()
	dlq, err := stream.OpenDeadLetters(ctx, w.js, w.names)
	if err != nil {
		t.Fatal(err)
	}
	n, err := dlq.Count(ctx, stream.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// warmerAdmin serves a warmer's admin routes (internal/service's, the real ones): ready, and
// /metrics with the API client's breaker for 127.0.0.1 open after an origin failed.
func warmerAdmin(t *testing.T) string {
	t.Helper()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(origin.Close)
	reg := prometheus.NewRegistry()
	cfg := config.Default(config.Warmer, "ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT=YES",
		"ROUTEMASTER_CIRCUIT_BREAKER_VOLUME_THRESHOLD=2", "ROUTEMASTER_CIRCUIT_BREAKER_SLEEP_WINDOW=3600").Fetch
	cfg.Registerer, cfg.Logger = reg, quiet
	client, err := apiclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = client.Get(ctx, origin.URL+"/widgets/1")
	}
	if v, _ := draintest.Metric(t, reg, "drain_apiclient_breaker_state", "host", "127.0.0.1"); v != apiclient.StateOpen {
		t.Fatalf("breaker state %v, want open", v)
	}
	return startAdmin(t, reg, func(context.Context) error { return nil })
}

// unreadyAdmin serves the admin routes of a service whose /readyz fails.
func unreadyAdmin(t *testing.T) string {
	t.Helper()
	return startAdmin(t, prometheus.NewRegistry(), func(context.Context) error { return errors.New("nats: not connected") })
}

// startAdmin serves /readyz (200 when ready answers nil, else 503 with the lifecycle's
// "not ready" body) and /metrics of reg, as a service's admin address does.
func startAdmin(t *testing.T, reg *prometheus.Registry, ready func(context.Context) error) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"status":"not ready","missing":["nats"],"errors":{"nats":%q}}`, err.Error())
			return
		}
		fmt.Fprint(w, `{"status":"ready"}`)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
