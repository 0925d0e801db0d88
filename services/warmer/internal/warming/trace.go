package warming

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracer makes the warmer's spans from the process's tracer provider (internal/service
// installs it from the OTEL_* variables; a no-op when they are unset).
var tracer = otel.Tracer("github.com/routemaster-drain/drain/services/warmer")

// maxLinks bounds the links of one fetch span to the requests it covers.
const maxLinks = 32

// spansOf returns the valid span contexts of the waiting requests, oldest first.
func spansOf(pending []*waiter) []trace.SpanContext {
	var scs []trace.SpanContext
	for _, wt := range pending {
		if wt.span.IsValid() {
			scs = append(scs, wt.span)
		}
	}
	return scs
}

// startFetch starts the span of one fetch of u. One fetch covers every request of u waiting
// when it starts (coalescing), so it is the child of the oldest one's delivery span and links
// the others; the origin GET (apiclient) and the cache store are its children, so the origin
// sees the trace of the event that caused the fetch.
// Its attributes are set only when it records (see stream's startProcess).
func startFetch(ctx context.Context, u string, from []trace.SpanContext) (context.Context, trace.Span) {
	var opts []trace.SpanStartOption
	if len(from) > 0 {
		ctx = trace.ContextWithSpanContext(ctx, from[0])
		for _, sc := range from[1:min(len(from), maxLinks+1)] {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	ctx, span := tracer.Start(ctx, "warmer.fetch", opts...)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("drain.url", u), attribute.Int("drain.warm.requests", len(from)))
	}
	return ctx, span
}

// endFetch ends a fetch span with its outcome.
func endFetch(span trace.Span, out outcome) {
	if span.IsRecording() {
		kind := map[outcomeKind]string{outStored: "stored", outGone: "gone", outSuperseded: "superseded", outFailed: "failed"}[out.kind]
		span.SetAttributes(attribute.String("drain.warm.outcome", kind))
		if out.err != nil {
			span.RecordError(out.err)
			span.SetStatus(codes.Error, kind)
		}
	}
	span.End()
}
