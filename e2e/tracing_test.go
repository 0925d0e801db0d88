package e2e

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

// collector is a fake OTLP/HTTP trace receiver: it keeps the body of every export.
type collector struct {
	*httptest.Server
	mu      sync.Mutex
	exports [][]byte
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.Error(w, "not an OTLP trace export", http.StatusNotFound)
			return
		}
		c.mu.Lock()
		c.exports = append(c.exports, b)
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(c.Close)
	return c
}

// exported reports whether some export came from service (its service.name) and holds a span
// of the trace (the raw 16 bytes of the trace id, as OTLP's protobuf encodes them).
func (c *collector) exported(service string, traceID []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.exports {
		if bytes.Contains(b, []byte("drain-"+service)) && bytes.Contains(b, traceID) {
			return true
		}
	}
	return false
}

// webhook records the traceparent of every swept batch POSTed to it.
type webhook struct {
	*httptest.Server
	mu           sync.Mutex
	traceparents []string
}

func startWebhook(t *testing.T) *webhook {
	t.Helper()
	h := &webhook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.traceparents = append(h.traceparents, r.Header.Get("traceparent"))
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *webhook) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.traceparents...)
}

const (
	busTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	busSpanID  = "00f067aa0ba902b7"
	busParent  = "00-" + busTraceID + "-" + busSpanID + "-01"
)

// warmedTraceparent posts one create event with the bus's traceparent and returns the
// traceparent of the origin GET the warmer makes for it.
func warmedTraceparent(t *testing.T, p *pipeline) string {
	t.Helper()
	p.post(t, `[{"topic":"widgets","type":"create","url":"`+p.originURL("/widgets/7")+`","t":1}]`, "traceparent", busParent)
	draintest.Eventually(t, 20*time.Second, "the warmer fetched the origin", func() bool { return len(p.originRequests()) > 0 })
	got := p.originRequests()[0].Header.Get("traceparent")
	if got == "" {
		t.Fatalf("the origin GET carries no traceparent; headers %v", p.originRequests()[0].Header)
	}
	return got
}

// With OTLP export configured by the standard variables, a batch POSTed with a traceparent
// reaches the origin in the same trace: the warmer's GET carries a traceparent with the bus's
// trace id (and a span of its own), and ingest, filter and warmer export spans of that trace.
// The sweeper's webhook call carries the trace of its hand-off.
func TestTraceFromBusToOrigin(t *testing.T) {
	c := startCollector(t)
	hook := startWebhook(t)
	p := startPipeline(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+c.URL, "OTEL_BSP_SCHEDULE_DELAY=100",
		"DRAIN_SWEEP_WEBHOOK_URL="+hook.URL)
	got := warmedTraceparent(t, p)
	parts := strings.Split(got, "-")
	if len(parts) != 4 || parts[1] != busTraceID || parts[2] == busSpanID {
		t.Fatalf("origin traceparent %q, want trace id %s and a span of the warmer's", got, busTraceID)
	}
	traceID, _ := hex.DecodeString(busTraceID)
	for _, s := range []string{"ingest", "filter", "warmer"} {
		draintest.Eventually(t, 10*time.Second, s+" exported a span of the bus's trace", func() bool { return c.exported(s, traceID) })
	}
	draintest.Eventually(t, 10*time.Second, "the sweeper's webhook was called", func() bool { return len(hook.calls()) > 0 })
	if tp := hook.calls()[0]; !strings.HasPrefix(tp, "00-") || len(tp) != len(busParent) {
		t.Errorf("webhook traceparent = %q, want the sweeper's hand-off span", tp)
	}
	for _, s := range pipelineServices {
		if err, inTime := p.Services[s].Term(10 * time.Second); err != nil || !inTime {
			t.Errorf("%s on SIGTERM: %v (in time %v)", s, err, inTime)
		}
	}
}

// With no OTEL_* variable set nothing is exported and nothing fails: the bus's traceparent is
// passed on unchanged (no span is recorded, so none replaces it) to the origin, the services
// never report tracing on, the sweeper's webhook gets no trace headers, and every service
// stops cleanly.
func TestTracingOffByDefault(t *testing.T) {
	hook := startWebhook(t)
	p := startPipeline(t, "DRAIN_SWEEP_WEBHOOK_URL="+hook.URL)
	if got := warmedTraceparent(t, p); got != busParent {
		t.Errorf("origin traceparent = %q, want the bus's %q passed on unchanged", got, busParent)
	}
	draintest.Eventually(t, 10*time.Second, "the sweeper's webhook was called", func() bool { return len(hook.calls()) > 0 })
	if tp := hook.calls()[0]; tp != "" {
		t.Errorf("webhook traceparent = %q with tracing off, want none", tp)
	}
	for _, s := range pipelineServices {
		if err, inTime := p.Services[s].Term(10 * time.Second); err != nil || !inTime {
			t.Errorf("%s on SIGTERM: %v (in time %v)", s, err, inTime)
		}
		if out := p.Services[s].Output.String(); strings.Contains(out, "tracing on") || strings.Contains(out, "opentelemetry") {
			t.Errorf("%s set tracing up with no OTEL_* variable:\n%s", s, out)
		}
	}
}
