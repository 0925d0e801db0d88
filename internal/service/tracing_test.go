package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/routemaster-drain/drain/pkg/config"
)

// env is a getenv over a map.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// otlpReceiver is a fake OTLP/HTTP collector counting the trace exports it receives.
func otlpReceiver(t *testing.T) (*httptest.Server, func() [][]byte) {
	t.Helper()
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	return srv, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return bodies
	}
}

// resetOTel restores OpenTelemetry's globals after a test that set them.
func resetOTel(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(tp); otel.SetTextMapPropagator(prop) })
}

// With no OTEL_* variable (or export turned off by one), the tracer provider stays the no-op
// one and a span started and ended exports nothing, even with a collector listening; the W3C
// propagator is installed all the same.
func TestTracingOffWithoutOTELVariables(t *testing.T) {
	resetOTel(t)
	srv, received := otlpReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", srv.URL+"/v1/traces") // read only if export were on
	for _, vars := range []map[string]string{
		{},
		{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL},
		{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL},
	} {
		tr, err := StartTracing(context.Background(), config.Warmer, env(vars), discard())
		if err != nil || tr.Exporter != "none" {
			t.Fatalf("%v: StartTracing = %+v, %v; want exporter none", vars, tr, err)
		}
		if _, sdk := otel.GetTracerProvider().(*sdktrace.TracerProvider); sdk {
			t.Errorf("%v: an SDK tracer provider was installed", vars)
		}
		_, span := otel.Tracer("test").Start(context.Background(), "nothing")
		span.End()
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if f := otel.GetTextMapPropagator().Fields(); !slices.Contains(f, "traceparent") {
			t.Errorf("propagator fields = %v, want traceparent among them", f)
		}
	}
	if n := len(received()); n != 0 {
		t.Errorf("the collector received %d exports with tracing off", n)
	}
}

// OTEL_EXPORTER_OTLP_ENDPOINT alone turns OTLP/HTTP export on: a span is exported by Shutdown
// at the latest, under the service's default name.
func TestTracingExportsToOTLPEndpoint(t *testing.T) {
	resetOTel(t)
	srv, received := otlpReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL) // the exporter reads its endpoint itself
	tr, err := StartTracing(context.Background(), config.Filter, env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}), discard())
	if err != nil || tr.Exporter != "otlp" || tr.Protocol != "http/protobuf" {
		t.Fatalf("StartTracing = %+v, %v", tr, err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "exported")
	id := span.SpanContext().TraceID()
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range received() {
		found = found || (bytes.Contains(b, id[:]) && bytes.Contains(b, []byte("drain-filter")))
	}
	if !found {
		t.Errorf("no export holds trace %s from drain-filter (%d exports)", hex.EncodeToString(id[:]), len(received()))
	}
}

// A bad exporter or protocol is a configuration error naming the variable.
func TestTracingBadSettings(t *testing.T) {
	resetOTel(t)
	for vars, name := range map[*map[string]string]string{
		{"OTEL_TRACES_EXPORTER": "zipkin"}:                                           "OTEL_TRACES_EXPORTER",
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}: "OTEL_EXPORTER_OTLP_PROTOCOL",
	} {
		_, err := StartTracing(context.Background(), config.Ingest, env(*vars), discard())
		var ve *config.VarError
		if !errors.As(err, &ve) || ve.Name != name {
			t.Errorf("%v: err = %v, want a *config.VarError naming %s", *vars, err, name)
		}
	}
}
