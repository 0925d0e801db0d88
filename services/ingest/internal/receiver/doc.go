// Package receiver is the drain's HTTP receiver: the endpoint the Routemaster bus POSTs event
// batches to. It checks a request in the gem's order (path 404, method 405, missing
// Authorization 401, unknown token 403, content type 415, body 413/400), splits the batch by
// topic and publishes one JetStream message per topic to <prefix>.events.<topic> (or
// <prefix>.siphon.<topic> for siphoned topics), each with a content-derived Nats-Msg-Id. It
// answers 204 only after JetStream acknowledged every message, and 503 with Retry-After when
// JetStream is down, slow or the in-flight cap is reached, so nothing the bus was told "204"
// about is ever lost and a bus retry is stored once.
//
// A Server is an http.Handler (it also serves /healthz and /readyz; its metrics go to the
// registry given to New, which the service serves on its admin address) and can run its own
// http.Server with timeouts, optional TLS and graceful shutdown:
//
//	srv, err := receiver.New(cfg, js, nc, reg, log)
//	err = srv.DeclareStreams(ctx) // retries until NATS answers
//	err = srv.Serve(ctx, ln)      // returns after ctx is cancelled and in-flight requests finished
package receiver
