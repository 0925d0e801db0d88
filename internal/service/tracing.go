package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/routemaster-drain/drain/pkg/config"
)

// Tracing is the process's OpenTelemetry tracing, as StartTracing set it up from the standard
// OTEL_* variables.
type Tracing struct {
	// Exporter is "otlp" (spans are exported) or "none" (the global tracer provider is
	// OpenTelemetry's noop one: a span costs a context lookup, no allocation when it continues
	// a received trace, and nothing is exported; the trace context still travels).
	Exporter string
	// Protocol is the OTLP protocol, "http/protobuf" or "grpc"; "" when nothing is exported.
	Protocol string
	tp       *sdktrace.TracerProvider
}

// StartTracing sets the process's OpenTelemetry globals from the environment (getenv looks a
// variable up). The propagator is always W3C trace context plus baggage, so a traceparent
// received (from the bus, in a JetStream header) is passed on to what the service publishes
// and fetches even when nothing is exported.
//
// Spans are exported only when OTEL_TRACES_EXPORTER is "otlp", or is unset while
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; OTEL_SDK_DISABLED=true
// and OTEL_TRACES_EXPORTER=none turn export off. Export uses the OTLP exporter of
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf by default,
// or grpc), which reads the other OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout,
// compression, certificates) itself; the batch span processor honours OTEL_BSP_*, the sampler
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, and the resource OTEL_SERVICE_NAME (default
// drain-<service>) and OTEL_RESOURCE_ATTRIBUTES. Exporter errors are logged at warn level and
// never stop the service. A bad value is an error naming the variable.
func StartTracing(ctx context.Context, name config.Service, getenv func(string) string, log *slog.Logger) (*Tracing, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t := &Tracing{Exporter: "none"}
	// Nothing exported: spans go to the noop provider rather than the global default, whose
	// delegating spans allocate each time (a few per warmed URL). Set only then: the tracers
	// taken from the global before it delegate to the first provider set, for good.
	off := func() (*Tracing, error) {
		otel.SetTracerProvider(noop.NewTracerProvider())
		return t, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return off()
	}
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	if exporter == "" && (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		exporter = "otlp"
	}
	switch exporter {
	case "", "none":
		return off()
	case "otlp":
	default:
		return nil, &config.VarError{Name: "OTEL_TRACES_EXPORTER", Msg: fmt.Sprintf("%q: the drain exports traces with otlp (or none)", exporter)}
	}
	protocolVar := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	protocol := strings.TrimSpace(getenv(protocolVar))
	if protocol == "" {
		protocolVar = "OTEL_EXPORTER_OTLP_PROTOCOL"
		protocol = strings.TrimSpace(getenv(protocolVar))
	}
	if protocol == "" {
		protocol = "http/protobuf"
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, &config.VarError{Name: protocolVar, Msg: fmt.Sprintf("%q: must be http/protobuf or grpc", protocol)}
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	b := ReadBuildInfo()
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "drain-"+string(name)), attribute.String("service.version", b.Version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, &config.VarError{Name: "OTEL_RESOURCE_ATTRIBUTES", Msg: err.Error()}
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "err", err) }))
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(t.tp)
	t.Exporter, t.Protocol = exporter, protocol
	log.Info("tracing on", "exporter", exporter, "protocol", protocol)
	return t, nil
}

// Shutdown exports the spans still buffered and stops the exporter, waiting until ctx is done
// at most. It does nothing when nothing is exported.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.tp == nil {
		return nil
	}
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}
