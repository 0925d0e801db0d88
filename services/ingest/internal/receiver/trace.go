package receiver

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracer makes ingest's spans from the process's tracer provider (internal/service installs
// it from the OTEL_* variables; a no-op when they are unset).
var tracer = otel.Tracer("github.com/routemaster-drain/drain/services/ingest")

// startPublish starts the span of storing one batch, child of the bus request's trace context
// (its traceparent header) or a new root. The messages published under it carry its context
// in their headers (stream.PublishAll).
func startPublish(r *http.Request, events, messages int) (context.Context, trace.Span) {
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := tracer.Start(ctx, "ingest.publish", trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() { // attributes only when it records (see stream's startProcess)
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.Int("drain.events", events),
			attribute.Int("messaging.batch.message_count", messages),
		)
	}
	return ctx, span
}

// endPublish ends a publish span, failed when err is set (the batch is answered 503).
func endPublish(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, "batch not stored")
	}
	span.End()
}
