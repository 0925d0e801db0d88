package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Msg is a JetStream message as handlers receive it.
type Msg = jetstream.Msg

// Handler processes one message. Its result decides the message's fate: nil acks it; a
// *RetryError or any plain error redelivers it after a backoff and dead-letters it once
// MaxDeliver deliveries failed; a *TransientError redelivers it and never dead-letters it; a
// *PermanentError dead-letters it at once. See the package documentation.
type Handler func(ctx context.Context, msg Msg) error

// ConsumerConfig configures Consume.
type ConsumerConfig struct {
	Stream        string        // stream to consume
	Durable       string        // durable consumer name, shared by all replicas
	FilterSubject string        // optional subject filter
	Stage         string        // dead letters go to <prefix>.dlq.<Stage>; default Durable
	Concurrency   int           // messages handled at once by this process (default 1)
	MaxAckPending int           // server-side cap on unacked messages for all replicas (default 1000)
	MaxDeliver    int           // failed deliveries before dead-lettering, TransientError ones not counted (default 20)
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
	outages := newOutageLedger(c)
	sem := make(chan struct{}, c.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c.pull(ctx, cons, func(msg Msg) {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				c.handle(work, js, dlq, msg, handler, outages)
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

func (c *ConsumerConfig) handle(ctx context.Context, js jetstream.JetStream, dlq string, msg Msg, handler Handler, outages *outageLedger) {
	var deliveries, seq uint64 = 1, 0
	if md, err := msg.Metadata(); err == nil {
		deliveries, seq = md.NumDelivered, md.Sequence.Stream
	}
	start := time.Now()
	err := c.runKeepingAlive(ctx, msg, handler)
	took := time.Since(start)
	outcome := "ack"
	f, delay := fateOf(err)
	// The delivery budget counts this delivery and the earlier ones that did not end in an
	// outage (as far as this process saw them).
	spent := deliveries - min(outages.count(seq), deliveries-1)
	switch {
	case f == fateAck:
		outages.forget(seq)
		if aerr := msg.Ack(); aerr != nil {
			c.Log.Warn("ack failed; the message will be redelivered", "consumer", c.Durable, "err", aerr)
		}
	case f == fatePermanent || (f == fateRetry && spent >= uint64(c.MaxDeliver)):
		outcome = "dead_letter"
		if derr := DeadLetter(ctx, js, dlq+"."+c.Stage, msg, err, deliveries); derr != nil {
			c.Log.Error("dead letter not stored; retrying the message", "consumer", c.Durable, "err", derr, "cause", err)
			outcome = "retry"
			_ = msg.NakWithDelay(c.BackoffMax)
			break
		}
		outages.forget(seq)
		c.Log.Error("message dead-lettered", "consumer", c.Durable, "subject", msg.Subject(), "deliveries", deliveries, "err", err)
		_ = msg.Term()
	default:
		outcome = "retry"
		if f == fateTransient {
			outages.add(seq)
		}
		if delay <= 0 {
			delay = c.backoff(deliveries)
		}
		c.Log.Warn("message will be retried", "consumer", c.Durable, "subject", msg.Subject(), "deliveries", deliveries, "delay", delay, "err", err)
		_ = msg.NakWithDelay(delay)
	}
	if c.Observe != nil {
		c.Observe(outcome, deliveries, took)
	}
}

// outageLedger counts, per stream sequence, the deliveries of a message that ended in a
// TransientError in this process, so they are not charged to the message's delivery budget
// (JetStream's NumDelivered counts every delivery). It is bounded: an entry leaves when its
// message is acked or dead-lettered here, and entries of messages another replica took over
// are dropped once the ledger is full, oldest first. What the ledger does not know (deliveries
// in another replica, or before a restart) is charged, so a message is never retried beyond
// its budget, only sometimes dead-lettered earlier than a perfect count would.
type outageLedger struct {
	mu  sync.Mutex
	n   map[uint64]outageCount
	max int
}

type outageCount struct {
	n    uint64
	last time.Time
}

func newOutageLedger(c ConsumerConfig) *outageLedger {
	return &outageLedger{n: map[uint64]outageCount{}, max: max(1024, 4*c.MaxAckPending)}
}

func (l *outageLedger) count(seq uint64) uint64 {
	if seq == 0 { // no metadata: nothing to key on
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[seq].n
}

func (l *outageLedger) add(seq uint64) {
	if seq == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.n[seq]; !ok && len(l.n) >= l.max {
		l.evict()
	}
	e := l.n[seq]
	l.n[seq] = outageCount{n: e.n + 1, last: time.Now()}
}

// evict drops the older half of the entries.
func (l *outageLedger) evict() {
	times := make([]time.Time, 0, len(l.n))
	for _, e := range l.n {
		times = append(times, e.last)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	cut := times[len(times)/2]
	for seq, e := range l.n {
		if !e.last.After(cut) {
			delete(l.n, seq)
		}
	}
}

func (l *outageLedger) forget(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.n, seq)
}

// runKeepingAlive runs handler, telling the server the message is in progress every half
// AckWait so a slow handler is not redelivered to another replica meanwhile. The keep-alive is
// a timer that re-arms itself: no goroutine of its own until it fires, which the many quick
// handlers of a busy consumer never reach (a goroutine and a ticker per message cost the
// warmer about 10% of its CPU).
func (c *ConsumerConfig) runKeepingAlive(ctx context.Context, msg Msg, handler Handler) (err error) {
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	t = time.AfterFunc(c.AckWait/2, func() {
		_ = msg.InProgress()
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			t.Reset(c.AckWait / 2)
		}
	})
	defer func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
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
