package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/config"
)

func TestMainHelpListsVariables(t *testing.T) {
	var out bytes.Buffer
	code := main(config.Sweeper, "sweeps the dirty map", []string{"-h"}, nil, &out, func(context.Context, *config.Config, *slog.Logger) error {
		t.Fatal("run called for -h")
		return nil
	})
	if code != 0 || !strings.Contains(out.String(), "DRAIN_SWEEP_INTERVAL") || !strings.Contains(out.String(), "sweeps the dirty map") {
		t.Errorf("exit %d, output:\n%s", code, out.String())
	}
}

func TestMainBadConfigIsOneLine(t *testing.T) {
	var out bytes.Buffer
	code := main(config.Ingest, "", nil, []string{"DRAIN_INGEST_ADDR=:0"}, &out, func(context.Context, *config.Config, *slog.Logger) error {
		t.Fatal("run called with a bad configuration")
		return nil
	})
	if code != 2 || strings.Count(out.String(), "\n") != 1 || !strings.Contains(out.String(), "ROUTEMASTER_DRAIN_TOKENS") {
		t.Errorf("exit %d, output %q", code, out.String())
	}
}

func TestMainRunFailureExits1(t *testing.T) {
	code := main(config.Filter, "", nil, nil, io.Discard, func(context.Context, *config.Config, *slog.Logger) error {
		return errors.New("boom")
	})
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
}

func TestAdminEndpoints(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "drain_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	var notReady error = errors.New("redis: connection refused")
	a, err := StartAdmin("127.0.0.1:0", reg, func(context.Context) error { return notReady }, map[string]http.Handler{
		"POST /sweep": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }),
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	get := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+a.Addr()+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("GET", "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get("GET", "/readyz"); code != 503 || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz not ready = %d %s", code, body)
	}
	notReady = nil
	if code, _ := get("GET", "/readyz"); code != 200 {
		t.Errorf("/readyz ready = %d", code)
	}
	a.Stopping()
	if code, body := get("GET", "/readyz"); code != 503 || !strings.Contains(body, "stopping") {
		t.Errorf("/readyz stopping = %d %s", code, body)
	}
	if code, body := get("GET", "/metrics"); code != 200 || !strings.Contains(body, "drain_test_total 1") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d", code)
	}
	if code, _ := get("POST", "/sweep"); code != 202 {
		t.Errorf("extra route = %d", code)
	}
}
