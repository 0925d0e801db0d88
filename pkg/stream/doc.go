// Package stream is the drain's JetStream wiring and its delivery policy: subject and stream
// names under a prefix, idempotent stream declaration, content-addressed publishing, durable
// pull consumers with River-style handler results, the classification of Redis failures, and
// the dead letters.
//
// Subjects are part of the public interface (docs/subjects.md):
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
// # Consuming
//
// An app adds its own durable consumer with Listen (the gem's Basic-drain listener) or, for
// full control, Consume:
//
//	err := stream.Listen(ctx, js, names, "audit", func(ctx context.Context, b stream.Batch) error {
//		for _, e := range b.Events {
//			if err := index(ctx, e); err != nil {
//				return stream.Retry(err)
//			}
//		}
//		return nil // ack
//	})
//
// # Results
//
// A handler's result decides the message's fate. Each result is an error type that callers
// and tests read back with errors.As; the first one in the error's chain decides.
//
//   - nil: the message is acked.
//   - *RetryError (Retry, RetryAfter), or any other error: the message is redelivered after
//     RetryError.Delay, or after the consumer's exponential backoff when the Delay is 0
//     (NakWithDelay). It is one failure of the message: the MaxDeliver-th dead-letters it.
//   - *TransientError (Transient): for failures of the drain's own infrastructure (its Redis
//     or JetStream down or failing over). The consumer pauses: it fetches nothing new, keeps
//     every message it holds alive (InProgress), and runs one of them again every
//     ProbeInterval (at most 1 s); the first result that is not a TransientError resumes it.
//     Nothing of the budget is spent, so a message waits out an outage of any length and
//     still has all MaxDeliver attempts when it ends.
//   - *PermanentError (Permanent), and a handler panic: the message is dead-lettered at once.
//
// A message is terminated only after its dead letter is stored, so nothing is lost.
//
// # The delivery budget
//
// Only a message's own failures count toward MaxDeliver, never JetStream's delivery count: a
// delivery that ended in a crash, an expired AckWait or an outage costs nothing. Consume
// keeps the count in the key-value bucket <prefix>_failures (Declare creates it), one record
// per consumer and stream sequence, written with compare-and-set before the message is
// redelivered, so every replica and the process that takes over after a crash share it. A
// record leaves when its message is acked or dead-lettered (a first delivery, which has
// none, costs nothing); one left behind expires with the bucket's max age
// (DRAIN_STREAM_MAX_AGE). When the count cannot be written (JetStream itself failing), the
// failure is held like a TransientError until it can.
//
// # Redis failures
//
// Every stage classifies a failed Redis command the same way: RedisFailure(err) is a
// TransientError when IsRedisOutage(err) (unreachable, timeouts, pool exhaustion, LOADING,
// READONLY, CLUSTERDOWN, TRYAGAIN, MASTERDOWN, BUSY, OOM, …) and a RetryError otherwise (a
// reply the message's keys or data caused: WRONGTYPE, a script error).
//
//	res, err := reorderFilter.Run(ctx, seq, events, true)
//	if err != nil {
//		return stream.RedisFailure(err)
//	}
//
// # Publishing
//
// PublishAll publishes a set of messages together and returns nil only once JetStream
// acknowledged every one (ingest answers 204 after it, the filter acks after it); its
// *PublishError names the messages that were not acknowledged, so the caller publishes them
// again under the same Nats-Msg-Id.
//
// # Sizes
//
// A NATS server refuses a message over its max_payload, and no retry changes that, so nothing
// is published larger. BatchLimit is the largest batch body for a connection's max_payload,
// keeping 4 KiB for headers (a dead letter's among them); SplitBatch packs a topic's events
// into valid batches within a limit; BodyLimit is what a message with given headers may
// carry. DeadLetter always fits: it cuts Drain-Error short, or names an original published at
// the limit instead of carrying it (Drain-Body-Omitted; a replay reads it back).
//
// # Declaring
//
// Declare and EnsureConsumer do what DRAIN_STREAM_MANAGE says (Manage): ManageCreate, the
// default, creates what is missing and never changes what exists, logging what differs, so an
// operator's nats stream edit survives restarts; ManageUpdate applies the settings at every
// start; ManageNone creates nothing, Declare and Ready name everything missing
// (ErrNotDeclared), and Consume waits for it.
//
// # Dead letters
//
// A dead letter is the original message (body and headers) on <prefix>.dlq.<stage> with the
// Drain-* headers saying why. Consume stores them (DeadLetter); work that never was a
// JetStream message, such as a URL the sweeper's webhook keeps refusing, is stored the same
// way with DeadLetterData. OpenDeadLetters lists (Each, List, Page for bounded pages), counts (Count, CountByStage), replays and purges them without
// consuming them (drainctl dlq and the console are thin callers). A replay republishes to the original
// subject with Drain-Replay-Stream and Drain-Replay-Sequence naming the first message, and
// deletes the dead letter only after JetStream acknowledged the replay.
package stream
