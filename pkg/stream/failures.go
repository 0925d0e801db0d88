package stream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The delivery budget is kept in a JetStream key-value bucket, <prefix>_failures, so that it
// counts a message's own failures and nothing else. JetStream's NumDelivered cannot: it also
// counts the deliveries of a process that crashed, of an AckWait that expired, and of the
// retries while the drain's own Redis or NATS was down.
//
// One record per (stream, durable consumer, stream sequence) holds the number of the
// message's deliveries that ended in a RetryError. A consumer writes it before it asks for the
// redelivery (NakWithDelay), with a compare-and-set, so every replica of the consumer, and the
// process that takes over after a crash, reads and adds to the same count; a crash between the
// write and the Nak costs nothing more than the failure it recorded. A record leaves when its
// message is acked or dead-lettered; one left by a message that left the stream otherwise (its
// max age, an operator) expires with the bucket's max age. Each record also holds the
// message's stream timestamp, so a record of an earlier stream of the same name (deleted and
// created again, sequences starting over) is not counted.

// failureRecord is the value of one record of the failures bucket.
type failureRecord struct {
	Failures  uint64 `json:"failures"`
	Published int64  `json:"published"`       // the message's stream timestamp, Unix nanoseconds
	Error     string `json:"error,omitempty"` // the last failure, at most maxRecordError bytes
}

const maxRecordError = 256

// FailuresBucket returns the name of the key-value bucket that holds the delivery budget of
// every consumer of the deployment: <prefix>_failures.
func (n Names) FailuresBucket() string { return n.Prefix + "_failures" }

// failureBucketOf returns the bucket of the deployment whose dead letters go to dlq
// (<prefix>.dlq): <prefix>_failures.
func failureBucketOf(dlq string) string {
	return strings.ReplaceAll(strings.TrimSuffix(dlq, ".dlq"), ".", "_") + "_failures"
}

// failureLedger reads and writes the records of one durable consumer.
type failureLedger struct {
	kv     jetstream.KeyValue
	prefix string // <stream>.<durable>.
}

func newFailureLedger(kv jetstream.KeyValue, stream, durable string) *failureLedger {
	return &failureLedger{kv: kv, prefix: keyToken(stream) + "." + keyToken(durable) + "."}
}

// keyToken returns s when it is made of characters every key-value key may hold, and "="
// followed by its unpadded base64url form otherwise, so any stream or consumer name maps to a
// key token one-to-one.
func keyToken(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return "=" + base64.RawURLEncoding.EncodeToString([]byte(s))
		}
	}
	if s == "" {
		return "="
	}
	return s
}

func (l *failureLedger) key(md *jetstream.MsgMetadata) string {
	return l.prefix + strconv.FormatUint(md.Sequence.Stream, 10)
}

// count returns the failures recorded for the message. A first delivery has none, and is not
// looked up.
func (l *failureLedger) count(ctx context.Context, md *jetstream.MsgMetadata) (uint64, error) {
	if md.NumDelivered <= 1 {
		return 0, nil
	}
	rec, _, err := l.get(ctx, md)
	return rec.Failures, err
}

// get returns the message's record and its revision (0 when there is none).
func (l *failureLedger) get(ctx context.Context, md *jetstream.MsgMetadata) (failureRecord, uint64, error) {
	e, err := l.kv.Get(ctx, l.key(md))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return failureRecord{}, 0, nil
	}
	if err != nil {
		return failureRecord{}, 0, fmt.Errorf("read failure count: %w", err)
	}
	var rec failureRecord
	if json.Unmarshal(e.Value(), &rec) != nil || rec.Published != md.Timestamp.UnixNano() {
		rec = failureRecord{} // unreadable, or left by an earlier stream of the same name
	}
	return rec, e.Revision(), nil
}

// add records one more failure of the message, cause, and returns the message's failures so
// far, this one included.
func (l *failureLedger) add(ctx context.Context, md *jetstream.MsgMetadata, cause error) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	key := l.key(md)
	for attempt := 0; ; attempt++ {
		var rec failureRecord
		var rev uint64
		if md.NumDelivered > 1 || attempt > 0 {
			var err error
			if rec, rev, err = l.get(ctx, md); err != nil {
				return 0, err
			}
		}
		rec.Failures++
		rec.Published = md.Timestamp.UnixNano()
		rec.Error = shorten(cause.Error(), maxRecordError)
		value, err := json.Marshal(rec)
		if err != nil {
			return 0, fmt.Errorf("record failure: %w", err)
		}
		if rev == 0 {
			_, err = l.kv.Create(ctx, key, value)
		} else {
			_, err = l.kv.Update(ctx, key, value, rev)
		}
		if err == nil {
			return rec.Failures, nil
		}
		// Another replica wrote the record meanwhile (it had the message after an AckWait):
		// read it again and add to its count.
		var apiErr *jetstream.APIError
		conflict := errors.Is(err, jetstream.ErrKeyExists) ||
			(errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
				apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant))
		if !conflict || attempt >= 4 {
			return 0, fmt.Errorf("record failure: %w", err)
		}
	}
}

// forget removes the message's record once it is acked or dead-lettered. A first delivery has
// none, and costs nothing.
func (l *failureLedger) forget(ctx context.Context, md *jetstream.MsgMetadata) error {
	if md.NumDelivered <= 1 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return l.kv.Delete(ctx, l.key(md))
}

// openFailures returns the failures bucket named bucket, creating it (History 1, TTL 72h) when
// it does not exist and create is set; when it does not exist and create is not set, the error
// wraps ErrNotDeclared.
func openFailures(ctx context.Context, js jetstream.JetStream, bucket string, create bool) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) && create {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: failuresDescription,
			History:     1,
			TTL:         defaultFailuresTTL,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile, by another replica
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("failures bucket %s %w", bucket, ErrNotDeclared)
	}
	if err != nil {
		return nil, fmt.Errorf("failures bucket %s: %w", bucket, err)
	}
	return kv, nil
}

const (
	failuresDescription = "routemaster-drain: failed deliveries per message (the delivery budget)"
	// defaultFailuresTTL is the max age of a bucket Consume creates itself (Declare gives the
	// bucket DRAIN_STREAM_MAX_AGE): the default max age of the drain's streams.
	defaultFailuresTTL = 72 * time.Hour
)
