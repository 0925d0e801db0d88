// Package stream is the drain's JetStream wiring: subject and stream names under a prefix,
// idempotent stream declaration, content-addressed publishing, and durable pull consumers with
// River-style handler results.
//
// Subjects are part of the public interface (DESIGN §3.4; docs/subjects.md):
//
//	<prefix>.events.<topic>   every accepted event: one message per (batch, topic), a JSON array
//	<prefix>.siphon.<topic>   siphoned topics, never filtered
//	<prefix>.changed.<topic>  events the filter found fresh
//	<prefix>.warm             warm requests (internal)
//	<prefix>.swept            URLs handed on by the sweeper
//	<prefix>.dlq.<stage>      dead letters
//
// Configuration is plain structs passed by value, whose zero values are the documented
// defaults (the Default* constants); the package never reads the environment (pkg/config maps
// NATS_*, DRAIN_PREFIX, DRAIN_STREAM_* and the consumer variables onto these types):
//
//	nc, js, err := stream.Connect(stream.ConnectOptions{URL: url, Name: "my-app"})
//	streams := stream.StreamOptions{Prefix: "routemaster"} // replicas, max age, storage, DLQ bounds
//	err = stream.DeclareUntil(ctx, js, streams, log)        // or Declare, once
//	names := streams.Names()
//
// ConnectOptions configure Connect (server, client name, credentials, TLS files, logger,
// async publishing bounds); StreamOptions configure Declare, DeclareUntil and StreamConfig;
// ConsumerConfig configures Consume, EnsureConsumer and ListenTo. It keeps its name rather
// than ConsumerOptions: like jetstream.ConsumerConfig, which it is declared as, it describes
// one durable consumer (its stream, durable name and subject are required), not the options of
// a constructor; otherwise it follows the same rules (passed by value, zero fields take the
// Default* values).
//
// An app adds its own durable consumer with Listen (the gem's Basic-drain listener) or, for
// full control, Consume:
//
//	err := stream.Listen(ctx, js, names, "audit", func(ctx context.Context, b stream.Batch) error {
//		for _, e := range b.Events { log.Println(e.Type, e.URL) }
//		return nil // ack; stream.Retry(err) retries with backoff; stream.Permanent(err) dead-letters
//	})
//
// A handler's result decides the message's fate: nil acks it; an error retries it after an
// exponential backoff (NakWithDelay), or after the delay of RetryAfter; Transient(err) retries
// the same way but never dead-letters (for Redis or JetStream outages); Permanent(err), or any
// error once the delivery count reaches MaxDeliver, and a handler panic, publish it to <prefix>.dlq.<stage> and
// terminates it. A message is terminated only after its dead letter is stored, so nothing is
// lost.
package stream
