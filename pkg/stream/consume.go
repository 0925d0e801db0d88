package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is a JetStream message as handlers receive it.
type Msg = jetstream.Msg

// Handler processes one message. See the package documentation for what its result means.
type Handler func(ctx context.Context, msg Msg) error

type retryError struct {
	err       error
	delay     time.Duration
	transient bool
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// RetryAfter asks for the message to be redelivered after delay.
func RetryAfter(delay time.Duration, err error) error {
	if err == nil {
		err = errors.New("retry requested")
	}
	return &retryError{err: err, delay: delay}
}

// Retry asks for the message to be redelivered after the consumer's exponential backoff. Any
// plain error means the same; Retry only makes the intent explicit. Retries count towards
// MaxDeliver: a message that keeps failing is dead-lettered.
func Retry(err error) error { return RetryAfter(0, err) }

// Transient asks for a redelivery after the backoff like Retry, but never dead-letters the
// message, however often it fails: for failures of the drain's own infrastructure (Redis or
// JetStream unavailable), which say nothing about the message and end when the outage does.
func Transient(err error) error {
	if err == nil {
		err = errors.New("transient failure")
	}
	return &retryError{err: err, transient: true}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the message is dead-lettered and terminated.
func Permanent(err error) error {
	if err == nil {
		err = errors.New("permanent failure")
	}
	return &permanentError{err: err}
}

func isTransient(err error) bool {
	var r *retryError
	return errors.As(err, &r) && r.transient
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// ConsumerConfig configures Consume.
type ConsumerConfig struct {
	Stream        string        // stream to consume
	Durable       string        // durable consumer name, shared by all replicas
	FilterSubject string        // optional subject filter
	Stage         string        // dead letters go to <prefix>.dlq.<Stage>; default Durable
	Concurrency   int           // messages handled at once by this process (default 1)
	MaxAckPending int           // server-side cap on unacked messages for all replicas (default 1000)
	MaxDeliver    int           // deliveries before dead-lettering (default 20)
	AckWait       time.Duration // redelivery timeout; handlers running longer are kept alive with InProgress (default 30s)
	Backoff       time.Duration // first retry delay, doubled per delivery (default 1s)
	BackoffMax    time.Duration // longest retry delay (default 30s)
	DeliverNew    bool          // a new consumer starts at new messages instead of the stream's first
	Log           *slog.Logger
	// Observe, when set, is called after each message with its outcome ("ack", "retry",
	// "dead_letter") and how long the handler ran; services hang metrics on it.
	Observe func(outcome string, deliveries uint64, took time.Duration)
}

func (c *ConsumerConfig) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.BackoffMax < c.Backoff {
		c.BackoffMax = max(c.Backoff, DefaultBackoffMax)
	}
	if c.Stage == "" {
		c.Stage = c.Durable
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// EnsureConsumer creates or updates the durable pull consumer of c and returns it.
//
// The server's own MaxDeliver is left unlimited: Consume enforces c.MaxDeliver itself, so that
// a message is dead-lettered (and stored there) before it is given up, never silently dropped.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, c ConsumerConfig) (jetstream.Consumer, error) {
	c.defaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	policy := jetstream.DeliverAllPolicy
	if c.DeliverNew {
		policy = jetstream.DeliverNewPolicy
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
		Durable:       c.Durable,
		FilterSubject: c.FilterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: c.MaxAckPending,
		DeliverPolicy: policy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", c.Durable, c.Stream, err)
	}
	return cons, nil
}

// Consume runs handler over the durable consumer until ctx is cancelled, then stops pulling,
// finishes the messages it already holds and returns nil. dlq is the subject prefix of dead
// letters (Names.Subject(DLQ, "")). If the server closes the consumer (deleted by an operator,
// stream recreated), Consume declares it again and goes on; it returns an error only when it
// cannot declare it at start.
func Consume(ctx context.Context, js jetstream.JetStream, dlq string, c ConsumerConfig, handler Handler) error {
	c.defaults()
	cons, err := EnsureConsumer(ctx, js, c)
	if err != nil {
		return err
	}
	// Handlers keep running on a context that outlives ctx, so a shutdown finishes in-flight
	// work instead of abandoning it half done.
	work := context.WithoutCancel(ctx)
	sem := make(chan struct{}, c.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c.pull(ctx, cons, func(msg Msg) {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				c.handle(work, js, dlq, msg, handler)
			}()
		})
		if ctx.Err() != nil {
			return nil
		}
		c.Log.Warn("consumer closed by the server; declaring it again", "consumer", c.Durable)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			if cons, err = EnsureConsumer(ctx, js, c); err == nil {
				break
			}
			c.Log.Warn("declare consumer failed", "consumer", c.Durable, "err", err)
		}
	}
}

// pull hands every message of cons to dispatch until ctx is cancelled (then it drains what it
// holds) or the server closes the consumer.
func (c *ConsumerConfig) pull(ctx context.Context, cons jetstream.Consumer, dispatch func(Msg)) {
	it, err := cons.Messages(jetstream.PullMaxMessages(2*c.Concurrency), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		c.Log.Warn("consume failed", "consumer", c.Durable, "err", err)
		return
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			c.Log.Warn("consumer pull failed", "consumer", c.Durable, "err", err)
			if c.gone(ctx, cons, err) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		dispatch(msg)
	}
}

// gone reports whether a pull error means the consumer no longer exists on the server (deleted
// by an operator, or its stream recreated): the pull then only ever misses heartbeats.
func (c *ConsumerConfig) gone(ctx context.Context, cons jetstream.Consumer, err error) bool {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return true
	}
	if !errors.Is(err, jetstream.ErrNoHeartbeat) {
		return false
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, ierr := cons.Info(ictx)
	return errors.Is(ierr, jetstream.ErrConsumerNotFound)
}

func (c *ConsumerConfig) handle(ctx context.Context, js jetstream.JetStream, dlq string, msg Msg, handler Handler) {
	var deliveries uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		deliveries = md.NumDelivered
	}
	start := time.Now()
	err := c.runKeepingAlive(ctx, msg, handler)
	took := time.Since(start)
	outcome := "ack"
	switch {
	case err == nil:
		if aerr := msg.Ack(); aerr != nil {
			c.Log.Warn("ack failed; the message will be redelivered", "consumer", c.Durable, "err", aerr)
		}
	case IsPermanent(err) || (deliveries >= uint64(c.MaxDeliver) && !isTransient(err)):
		outcome = "dead_letter"
		if derr := DeadLetter(ctx, js, dlq+"."+c.Stage, msg, err, deliveries); derr != nil {
			c.Log.Error("dead letter not stored; retrying the message", "consumer", c.Durable, "err", derr, "cause", err)
			outcome = "retry"
			_ = msg.NakWithDelay(c.BackoffMax)
			break
		}
		c.Log.Error("message dead-lettered", "consumer", c.Durable, "subject", msg.Subject(), "deliveries", deliveries, "err", err)
		_ = msg.Term()
	default:
		outcome = "retry"
		delay := c.backoff(deliveries)
		var r *retryError
		if errors.As(err, &r) && r.delay > 0 {
			delay = r.delay
		}
		c.Log.Warn("message will be retried", "consumer", c.Durable, "subject", msg.Subject(), "deliveries", deliveries, "delay", delay, "err", err)
		_ = msg.NakWithDelay(delay)
	}
	if c.Observe != nil {
		c.Observe(outcome, deliveries, took)
	}
}

// runKeepingAlive runs handler, telling the server the message is in progress every half
// AckWait so a slow handler is not redelivered to another replica meanwhile.
func (c *ConsumerConfig) runKeepingAlive(ctx context.Context, msg Msg, handler Handler) (err error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(c.AckWait / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("handler panic: %v", p))
		}
	}()
	return handler(ctx, msg)
}

// backoff returns the delay before delivery n+1: Backoff doubled per delivery, capped.
func (c *ConsumerConfig) backoff(n uint64) time.Duration {
	d := c.Backoff
	for i := uint64(1); i < n && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}

// Headers of a dead letter, besides the original message's own headers.
const (
	HeaderError          = "Drain-Error"
	HeaderStage          = "Drain-Stage"
	HeaderOrigSubject    = "Drain-Original-Subject"
	HeaderOrigStream     = "Drain-Original-Stream"
	HeaderOrigSequence   = "Drain-Original-Sequence"
	HeaderDeliveries     = "Drain-Deliveries"
	HeaderDeadLetteredAt = "Drain-Dead-Lettered-At"
)

// DeadLetter stores msg on subject with its body, its headers and the reason, and waits for
// JetStream to acknowledge it. Its Nats-Msg-Id derives from the original stream and sequence,
// so dead-lettering the same message twice stores it once.
func DeadLetter(ctx context.Context, js jetstream.JetStream, subject string, msg Msg, cause error, deliveries uint64) error {
	out := nats.NewMsg(subject)
	out.Data = msg.Data()
	for k, vs := range msg.Headers() {
		if k == jetstream.MsgIDHeader {
			continue
		}
		out.Header[k] = vs
	}
	stage := subject[lastDot(subject)+1:]
	out.Header.Set(HeaderError, truncate(cause.Error(), 1024))
	out.Header.Set(HeaderStage, stage)
	out.Header.Set(HeaderOrigSubject, msg.Subject())
	out.Header.Set(HeaderDeliveries, strconv.FormatUint(deliveries, 10))
	out.Header.Set(HeaderDeadLetteredAt, time.Now().UTC().Format(time.RFC3339Nano))
	id := "dlq-" + stage + "-" + MsgID(msg.Subject(), msg.Data())
	if md, err := msg.Metadata(); err == nil {
		out.Header.Set(HeaderOrigStream, md.Stream)
		out.Header.Set(HeaderOrigSequence, strconv.FormatUint(md.Sequence.Stream, 10))
		id = fmt.Sprintf("dlq-%s-%s-%d", stage, md.Stream, md.Sequence.Stream)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := js.PublishMsg(ctx, out, jetstream.WithMsgID(id))
	return err
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
