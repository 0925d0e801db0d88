package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Manage says what Declare and Consume may do to the streams, the failures bucket and the
// durable consumers they find (DRAIN_STREAM_MANAGE).
type Manage string

const (
	// ManageCreate creates what is missing and never changes what exists, so an operator's
	// edit (nats stream edit --max-bytes) survives every restart; where what exists differs
	// from the configured settings, the difference is logged at warn level. It is the
	// default: the zero Manage means the same.
	ManageCreate Manage = "create"
	// ManageUpdate creates what is missing and updates what exists to the configured
	// settings at every declaration (the last process started wins).
	ManageUpdate Manage = "update"
	// ManageNone changes nothing: what is missing is an error wrapping ErrNotDeclared that
	// names it, and differences are logged as for ManageCreate.
	ManageNone Manage = "none"
)

// ErrNotDeclared is matched (errors.Is) by the error for a stream, bucket or consumer that does
// not exist when Manage is ManageNone.
var ErrNotDeclared = errors.New("does not exist, and DRAIN_STREAM_MANAGE=none lets the drain create nothing")

// declareBucket declares the failures bucket of want as mode says, with declareStream's
// bounded calls and retries (a bucket is a stream, and two processes creating it at once on
// a cluster can hang the same way).
func declareBucket(ctx context.Context, js jetstream.JetStream, mode Manage, want jetstream.KeyValueConfig, log *slog.Logger) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, declareCallTimeout)
		err := declareBucketOnce(cctx, js, mode, want, log)
		cancel()
		if errors.Is(err, ErrNotDeclared) {
			return err
		}
		if err == nil || ctx.Err() != nil || !retryableDeclare(err) {
			if err != nil {
				return fmt.Errorf("declare bucket %s: %w", want.Bucket, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("declare bucket %s: %w", want.Bucket, err)
		case <-time.After(100*time.Millisecond + rand.N(400*time.Millisecond)):
		}
	}
}

func declareBucketOnce(ctx context.Context, js jetstream.JetStream, mode Manage, want jetstream.KeyValueConfig, log *slog.Logger) error {
	if mode == ManageUpdate {
		_, err := js.CreateOrUpdateKeyValue(ctx, want)
		return err
	}
	kv, err := js.KeyValue(ctx, want.Bucket)
	switch {
	case err == nil:
		st, err := kv.Status(ctx)
		if err != nil {
			return err
		}
		if info, ok := st.(*jetstream.KeyValueBucketStatus); ok {
			have := info.StreamInfo().Config
			var diff []string
			diff = differs(diff, "ttl", have.MaxAge, want.TTL)
			diff = differs(diff, "history", have.MaxMsgsPerSubject, int64(max(want.History, 1)))
			diff = differs(diff, "storage", have.Storage, want.Storage)
			diff = differs(diff, "replicas", max(have.Replicas, 1), max(want.Replicas, 1))
			if len(diff) > 0 {
				log.Warn("bucket differs from the configured settings; kept as it is (DRAIN_STREAM_MANAGE="+string(orCreate(mode))+")",
					"bucket", want.Bucket, "differences", strings.Join(diff, "; "))
			}
		}
		return nil
	case !errors.Is(err, jetstream.ErrBucketNotFound):
		return err
	case mode == ManageNone:
		return ErrNotDeclared
	}
	_, err = js.CreateKeyValue(ctx, want)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return nil
	}
	return err
}

// ensureConsumer is EnsureConsumer's ManageCreate and ManageNone: the consumer as it exists
// (its differences from want logged), created when missing and mode allows.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, mode Manage, stream string, want jetstream.ConsumerConfig, log *slog.Logger) (jetstream.Consumer, error) {
	for {
		cons, err := js.Consumer(ctx, stream, want.Durable)
		switch {
		case err == nil:
			if diff := consumerDiff(cons.CachedInfo().Config, want); len(diff) > 0 {
				log.Warn("consumer differs from the configured settings; kept as it is (DRAIN_STREAM_MANAGE="+string(orCreate(mode))+")",
					"consumer", want.Durable, "stream", stream, "differences", strings.Join(diff, "; "))
			}
			return cons, nil
		case !errors.Is(err, jetstream.ErrConsumerNotFound):
			return nil, err
		case mode == ManageNone:
			return nil, fmt.Errorf("consumer %s on %s %w", want.Durable, stream, ErrNotDeclared)
		}
		cons, err = js.CreateConsumer(ctx, stream, want)
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return cons, err
		}
		// Another replica created it meanwhile: take it as it is.
	}
}

func orCreate(m Manage) Manage {
	if m == "" {
		return ManageCreate
	}
	return m
}

// streamDiff lists the settings in which have differs from want.
func streamDiff(have, want jetstream.StreamConfig) []string {
	var diff []string
	if !slices.Equal(have.Subjects, want.Subjects) {
		diff = append(diff, fmt.Sprintf("subjects %v (configured %v)", have.Subjects, want.Subjects))
	}
	diff = differs(diff, "retention", have.Retention, want.Retention)
	diff = differs(diff, "max_age", have.MaxAge, want.MaxAge)
	diff = differs(diff, "max_bytes", unlimited(have.MaxBytes), unlimited(want.MaxBytes))
	diff = differs(diff, "storage", have.Storage, want.Storage)
	diff = differs(diff, "replicas", max(have.Replicas, 1), max(want.Replicas, 1))
	diff = differs(diff, "duplicate_window", have.Duplicates, want.Duplicates)
	diff = differs(diff, "discard", have.Discard, want.Discard)
	return diff
}

// consumerDiff lists the settings in which have differs from want.
func consumerDiff(have, want jetstream.ConsumerConfig) []string {
	var diff []string
	diff = differs(diff, "filter_subject", have.FilterSubject, want.FilterSubject)
	diff = differs(diff, "ack_policy", have.AckPolicy, want.AckPolicy)
	diff = differs(diff, "ack_wait", have.AckWait, want.AckWait)
	diff = differs(diff, "max_deliver", have.MaxDeliver, want.MaxDeliver)
	diff = differs(diff, "max_ack_pending", have.MaxAckPending, want.MaxAckPending)
	return diff
}

func differs[T comparable](diff []string, name string, have, want T) []string {
	if have == want {
		return diff
	}
	return append(diff, fmt.Sprintf("%s %v (configured %v)", name, have, want))
}

// unlimited maps JetStream's two spellings of "no limit" (0 when configured, -1 as the
// server reports it) to one.
func unlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}
