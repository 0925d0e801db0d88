package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/config"
	"github.com/routemaster-drain/drain/draintest"
	"github.com/routemaster-drain/drain/services/ingest/ingest"
	"github.com/routemaster-drain/drain/stream"
)

// TestListenerPrintsEveryBatch starts the listener before the streams exist, then posts the
// protocol's sample batch B to an in-process ingest: the listener prints one batch per topic.
func TestListenerPrintsEveryBatch(t *testing.T) {
	n := draintest.StartNATS(t)
	_, js := n.Connect(t)
	names := stream.Names{Prefix: "ex"}
	log := slog.New(slog.DiscardHandler)
	out := &draintest.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, js, names, "printer", out, log) }()

	cfg := config.Default(config.Ingest, "ROUTEMASTER_DRAIN_TOKENS=demo", "DRAIN_PREFIX=ex", "NATS_URL="+n.URL())
	nc, ijs, err := stream.Connect(cfg.NATS, "ingest", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	srv, err := ingest.New(cfg, ijs, nc, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.DeclareStreams(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	body := `[{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1001","t":1559567869210},{"topic":"riders","type":"create","url":"https://riders.example.com/api/riders/77","t":1559567869215},{"topic":"restaurants","type":"update","url":"https://restaurants.example.com/api/restaurants/9","t":1559567869302}]`
	req, _ := http.NewRequest("POST", hs.URL+"/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Basic ZGVtbzp4")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("post: %v %v", resp, err)
	}
	want := []string{
		"batch topic=orders events=1\n  update https://orders.example.com/api/orders/1001 t=1559567869210\n",
		"batch topic=riders events=1\n  create https://riders.example.com/api/riders/77 t=1559567869215\n",
		"batch topic=restaurants events=1\n  update https://restaurants.example.com/api/restaurants/9 t=1559567869302\n",
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := out.String()
		all := true
		for _, w := range want {
			all = all && strings.Contains(got, w)
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener printed %q, want every batch of %q", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v", err)
	}
}
