package stream

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Headers of the W3C trace context (https://www.w3.org/TR/trace-context/) a drain message
// carries when the work that published it was traced: the bus request's traceparent, or the
// span of the stage that published it.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// tracerName is the instrumentation scope of the package's spans.
const tracerName = "github.com/routemaster-drain/drain/pkg/stream"

// traceContext is the one propagation format of JetStream headers: W3C trace context, whatever
// the process's global propagator is, since the headers are part of the drain's wire contract.
var traceContext propagation.TraceContext

// InjectTrace writes the W3C trace context of the span in ctx into h (traceparent and, when
// set, tracestate). It writes nothing when ctx holds no valid span context, so untraced work
// publishes no trace headers. PublishAll calls it for every message without a traceparent.
func InjectTrace(ctx context.Context, h nats.Header) {
	if h == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	traceContext.Inject(ctx, headerCarrier(h))
}

// ExtractTrace returns ctx with the remote span context of h's traceparent as the parent of
// the spans started from it, or ctx itself when h has no valid traceparent. Consume calls it
// for every message, so a handler's spans continue the publisher's trace.
func ExtractTrace(ctx context.Context, h nats.Header) context.Context {
	if h == nil || h.Get(HeaderTraceparent) == "" {
		return ctx
	}
	return traceContext.Extract(ctx, headerCarrier(h))
}

// headerCarrier adapts nats.Header, whose keys are case-sensitive, to the propagator: it writes
// the lowercase names of the W3C specification and reads them in any case.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	if v := nats.Header(c).Get(key); v != "" {
		return v
	}
	return http.Header(c).Get(key)
}

func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// tracer returns the package's tracer of tp, or of the global provider when tp is nil.
func tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startProcess starts the consumer span of one delivery of msg, child of the trace context
// its headers carry. Like every span of the drain, it gets its attributes after it started, and
// only when it records: with a noop provider (the services' when nothing is exported) no
// attribute is built on the hot path, and the SDK's samplers do not read start attributes.
func (c *ConsumerConfig) startProcess(ctx context.Context, msg Msg, deliveries, seq uint64) (context.Context, trace.Span) {
	ctx = ExtractTrace(ctx, msg.Headers())
	ctx, span := c.tracer.Start(ctx, c.Stage+".process", trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.String("messaging.consumer.group.name", c.Durable),
			attribute.Int64("messaging.nats.stream_sequence", int64(seq)),
			attribute.Int64("messaging.nats.deliveries", int64(deliveries)),
		)
	}
	return ctx, span
}

// endProcess ends a delivery's span with its outcome; a retry or dead letter marks it failed.
func endProcess(span trace.Span, outcome string, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(attribute.String("drain.outcome", outcome))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}
