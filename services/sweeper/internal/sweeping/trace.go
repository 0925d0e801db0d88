package sweeping

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/routemaster-drain/drain/pkg/dirty"
)

// tracer makes the sweeper's spans from the process's tracer provider (internal/service
// installs it from the OTEL_* variables; a no-op when they are unset).
var tracer = otel.Tracer("github.com/routemaster-drain/drain/services/sweeper")

// startHandoff starts the span of handing one leased batch on. The dirty map keeps URLs, not
// the traces that marked them, so each batch starts a trace of its own; the swept message and
// the webhook request carry it (traceparent).
func startHandoff(ctx context.Context, tok dirty.Token, urls int) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, "sweeper.handoff", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() { // attributes only when it records (see stream's startProcess)
		span.SetAttributes(
			attribute.String("drain.sweep.batch", tok.Batch()),
			attribute.Int("drain.sweep.generation", tok.Generation()),
			attribute.Int("drain.urls", urls),
		)
	}
	return ctx, span
}

// endHandoff ends a hand-off span, failed when err is set.
func endHandoff(span trace.Span, handed int, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("drain.urls.completed", handed))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "hand-off failed")
		}
	}
	span.End()
}
