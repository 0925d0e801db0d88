package filtering

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/routemaster-drain/drain/pkg/reorder"
)

// tracer makes the filter's spans from the process's tracer provider (internal/service
// installs it from the OTEL_* variables; a no-op when they are unset).
var tracer = otel.Tracer("github.com/routemaster-drain/drain/services/filter")

// startScript starts the span of one run of the reorder script over a batch, child of the
// delivery's span (stream.Consume continues the publisher's trace).
// Its attributes are set only when it records (see stream's startProcess).
func startScript(ctx context.Context, seq uint64, events int) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, "filter.script", trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("db.system.name", "redis"),
			attribute.Int64("messaging.nats.stream_sequence", int64(seq)),
			attribute.Int("drain.events", events),
		)
	}
	return ctx, span
}

// endScript ends a script span with what the script found, or its error.
func endScript(span trace.Span, res reorder.Result, err error) {
	if span.IsRecording() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "reorder script failed")
		} else {
			span.SetAttributes(attribute.Int("drain.events.fresh", len(res.Fresh)), attribute.Int("drain.events.stale", res.Stale),
				attribute.Int("drain.urls.newly_dirty", len(res.NewlyDirty)))
		}
	}
	span.End()
}
