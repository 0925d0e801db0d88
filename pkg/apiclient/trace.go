package apiclient

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the client's spans.
const tracerName = "github.com/routemaster-drain/drain/pkg/apiclient"

// startAttempt starts the client span of one attempt; its context goes into the request, whose
// headers then carry it (Options.Propagator). Its attributes are set only when it records.
func (c *Client) startAttempt(ctx context.Context, a *attempt) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, "HTTP "+a.method, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("http.request.method", a.method),
			attribute.String("url.full", a.shown),
			attribute.String("server.address", a.host),
		)
	}
	return ctx, span
}

// endAttempt ends an attempt's span with the response status, or the error.
func endAttempt(span trace.Span, resp *Response, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	var se *StatusError
	switch {
	case resp != nil:
		span.SetAttributes(attribute.Int("http.response.status_code", resp.Status))
	case errors.As(err, &se):
		span.SetAttributes(attribute.Int("http.response.status_code", se.Status))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
