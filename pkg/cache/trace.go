package cache

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the cache's spans.
const tracerName = "github.com/routemaster-drain/drain/pkg/cache"

// startStore starts the span of a conditional store of r under url.
// Its attributes are set only when it records (see stream's startProcess).
func (c *Cache) startStore(ctx context.Context, url string, r *Response) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, "cache.store", trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("db.system.name", "redis"),
			attribute.String("drain.url", url),
			attribute.Int64("drain.cache.index", r.Index),
			attribute.Int("drain.cache.body_bytes", len(r.Body)),
		)
	}
	return ctx, span
}

// endStore ends a store's span with whether it stored (false: superseded) or its error.
func endStore(span trace.Span, stored bool, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Bool("drain.cache.stored", stored))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
