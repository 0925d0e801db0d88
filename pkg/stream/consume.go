package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Msg is a JetStream message as handlers receive it.
type Msg = jetstream.Msg

// Handler processes one message. Its result decides the message's fate: nil acks it; a
// *RetryError or any plain error redelivers it after a backoff and dead-letters it once
// MaxDeliver of its deliveries failed; a *TransientError pauses the consumer and runs the
// message again once the outage is over, never dead-lettering it; a *PermanentError
// dead-letters it at once. See the package documentation.
type Handler func(ctx context.Context, msg Msg) error

// ConsumerConfig configures Consume.
type ConsumerConfig struct {
	Stream        string // stream to consume
	Durable       string // durable consumer name, shared by all replicas
	FilterSubject string // optional subject filter
	Stage         string // dead letters go to <prefix>.dlq.<Stage>; default Durable
	// Concurrency is how many handlers run at once in this process (default 1). The process
	// holds up to twice as many messages: those waiting for a handler are kept alive too.
	Concurrency   int
	MaxAckPending int // server-side cap on unacked messages for all replicas (default 1000)
	// MaxDeliver is how many of a message's deliveries may fail (end in a RetryError) before
	// it is dead-lettered, counted across replicas and restarts in the failures bucket
	// (default 20). Deliveries that ended otherwise (a TransientError, a crash, an expired
	// AckWait) are not counted.
	MaxDeliver int
	AckWait    time.Duration // redelivery timeout; held messages are kept alive with InProgress (default 30s)
	Backoff    time.Duration // first retry delay, doubled per failure (default 1s)
	BackoffMax time.Duration // longest retry delay (default 30s)
	DeliverNew bool          // a new consumer starts at new messages instead of the stream's first
	// FailuresBucket is the key-value bucket of the delivery budget (default
	// <prefix>_failures, dlq being <prefix>.dlq); Consume creates it when it is missing,
	// unless Manage is ManageNone.
	FailuresBucket string
	// Manage says whether Consume may create or update the consumer (DRAIN_STREAM_MANAGE;
	// default ManageCreate). With ManageNone, Consume waits for a missing stream, consumer or
	// bucket, logging what it waits for every 30 s.
	Manage Manage
	Log    *slog.Logger
	// Observe, when set, is called after each handler run with its outcome ("ack", "retry",
	// "dead_letter", or "transient": the message is held until the outage ends), the
	// message's JetStream delivery count and how long the handler ran; services hang metrics
	// on it.
	Observe func(outcome string, deliveries uint64, took time.Duration)
	// ObserveBacklog, when set, is called while Consume runs with the consumer's backlog as
	// the server reports it: once at start, then every BacklogInterval (one JetStream request
	// each). Services export it as drain_consumer_pending_messages and
	// drain_consumer_ack_pending_messages.
	ObserveBacklog func(Backlog)
	// BacklogInterval is how often ObserveBacklog is called (default DefaultBacklogInterval).
	BacklogInterval time.Duration
	// TracerProvider makes the span of each delivery ("<Stage>.process", a child of the
	// trace context in the message's headers; see ExtractTrace), which the handler's ctx
	// carries (default otel.GetTracerProvider(), a no-op until the app installs an SDK).
	TracerProvider trace.TracerProvider

	tracer trace.Tracer
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
	if c.BacklogInterval <= 0 {
		c.BacklogInterval = DefaultBacklogInterval
	}
	if c.tracer == nil {
		c.tracer = tracer(c.TracerProvider)
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// EnsureConsumer declares the durable pull consumer of c as c.Manage says and returns it: by
// default it creates it when missing and otherwise takes it as it is, logging on c.Log what
// differs from c; ManageUpdate creates or updates it to c; ManageNone only looks it up (a
// missing consumer is an error wrapping ErrNotDeclared).
//
// The consumer carries a Description and the Metadata MetadataVersion, MetadataStage
// (c.Stage) and MetadataPrefix (when c.Stream is a drain stream); servers older than 2.10
// ignore the Metadata. The server's own MaxDeliver is left unlimited: Consume enforces c.MaxDeliver itself, so that
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
	want := jetstream.ConsumerConfig{
		Durable:       c.Durable,
		Description:   "routemaster-drain " + c.Stage + " consumer of " + c.Stream,
		Metadata:      metadata(prefixOf(c.Stream), c.Stage),
		FilterSubject: c.FilterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: c.MaxAckPending,
		DeliverPolicy: policy,
	}
	var cons jetstream.Consumer
	var err error
	if c.Manage == ManageUpdate {
		cons, err = js.CreateOrUpdateConsumer(ctx, c.Stream, want)
	} else {
		cons, err = ensureConsumer(ctx, js, c.Manage, c.Stream, want, c.Log)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", c.Durable, c.Stream, err)
	}
	return cons, nil
}

// Consume runs handler over the durable consumer until ctx is cancelled, then stops pulling,
// finishes the messages it already holds and returns nil. dlq is the subject prefix of dead
// letters (Names.Subject(DLQ, "")). If the server closes the consumer (deleted by an operator,
// stream recreated), Consume declares it again and goes on; it returns an error only when it
// cannot declare the consumer, or open the failures bucket, at start (with ManageNone it waits
// for a missing one instead).
//
// Consume pulls only as many messages as it can hold (twice Concurrency) and keeps each one
// alive with InProgress, every AckWait/2, from the moment it arrives until it is settled, so a
// message waiting for a handler is never redelivered meanwhile. When a handler returns a
// TransientError, Consume pauses (see the package documentation): it fetches nothing more and
// holds that message, alive, until one held message, run again every ProbeInterval, gets a
// result that is not a TransientError; then every held message runs again. A message held
// when ctx is cancelled is handed back (Nak) for another replica, at no cost to its budget.
func Consume(ctx context.Context, js jetstream.JetStream, dlq string, c ConsumerConfig, handler Handler) error {
	c.defaults()
	if err := c.validate(); err != nil {
		return err
	}
	bucket := c.FailuresBucket
	if bucket == "" {
		bucket = failureBucketOf(dlq)
	}
	var cons jetstream.Consumer
	var kv jetstream.KeyValue
	var err error
	var logged time.Time
	for {
		if cons, err = EnsureConsumer(ctx, js, c); err == nil {
			kv, err = openFailures(ctx, js, bucket, c.Manage != ManageNone)
		}
		if err == nil || ctx.Err() != nil {
			break
		}
		// DRAIN_STREAM_MANAGE=none: an operator creates it. Otherwise a cluster placing or
		// electing the consumer, or a stream not there yet: try again every second rather
		// than stop the service.
		if time.Since(logged) >= 30*time.Second {
			logged = time.Now()
			msg := "declaring the consumer failed; retrying"
			if errors.Is(err, ErrNotDeclared) {
				msg = "waiting for the operator to create it"
			}
			c.Log.Warn(msg, "consumer", c.Durable, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	r := &runner{
		c:       &c,
		js:      js,
		dlq:     dlq,
		handler: handler,
		ledger:  newFailureLedger(kv, c.Stream, c.Durable),
		// Handlers keep running on a context that outlives ctx, so a shutdown finishes
		// in-flight work instead of abandoning it half done.
		work:   context.WithoutCancel(ctx),
		stop:   ctx,
		slots:  newSlots(c.Concurrency),
		credit: newCredit(2 * c.Concurrency),
		gate:   newGate(ProbeInterval(c.Backoff), c.Durable, c.Log),
	}
	go r.gate.probe(ctx)
	defer r.wg.Wait()
	if c.ObserveBacklog != nil {
		r.wg.Go(func() { c.pollBacklog(ctx, js) })
	}
	for {
		r.pull(ctx, cons)
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

// ProbeInterval is how often a paused consumer whose Backoff is backoff runs a held message
// again to find out whether the outage is over: the smaller of backoff and 1 s, so a consumer
// resumes within a second of its dependency coming back.
func ProbeInterval(backoff time.Duration) time.Duration {
	if backoff <= 0 {
		return time.Second
	}
	return min(backoff, time.Second)
}

// pullExpiry bounds one pull request: an idle consumer sends one every pullExpiry.
const pullExpiry = 5 * time.Second

// runner is one Consume call's state.
type runner struct {
	c       *ConsumerConfig
	js      jetstream.JetStream
	dlq     string
	handler Handler
	ledger  *failureLedger
	work    context.Context // handlers' context: outlives stop
	stop    context.Context // Consume's ctx
	slots   *slots          // handlers running
	credit  *credit         // messages held
	gate    *gate
	wg      sync.WaitGroup
}

// pull fetches messages while the gate is open and there is room to hold them, and hands each
// to its own goroutine, until ctx is cancelled or the server closes the consumer. A pull asks
// for as many messages as the process has room for, so it never receives one it cannot keep
// alive.
func (r *runner) pull(ctx context.Context, cons jetstream.Consumer) {
	threshold := max(1, r.credit.size/2)
	for {
		select {
		case <-r.gate.opened():
		case <-ctx.Done():
			return
		}
		n := r.credit.take(ctx, threshold)
		if n == 0 {
			return
		}
		fctx, cancel := context.WithTimeout(ctx, pullExpiry)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				r.dispatch(msg)
			}
			err = batch.Error()
		}
		cancel()
		r.credit.give(n - got)
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		r.c.Log.Warn("consumer pull failed", "consumer", r.c.Durable, "err", err)
		if r.gone(ctx, cons, err) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// gone reports whether a pull error means the consumer no longer exists on the server (deleted
// by an operator, or its stream recreated).
func (r *runner) gone(ctx context.Context, cons jetstream.Consumer, err error) bool {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return true
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, ierr := cons.Info(ictx)
	return errors.Is(ierr, jetstream.ErrConsumerNotFound)
}

// dispatch holds msg, alive, until it is settled. Messages take their first handler slot in
// the order they arrived, so with Concurrency 1 they are handled in stream order.
func (r *runner) dispatch(msg Msg) {
	slot := r.slots.ticket()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.credit.give(1)
		stop := r.keepAlive(msg)
		defer stop()
		r.handle(msg, slot)
	}()
}

// keepAlive tells the server every AckWait/2 that msg is in progress, until stop is called,
// so a held message is not redelivered to another replica meanwhile. It is a timer that
// re-arms itself: no goroutine of its own until it fires, which the many quick messages of a
// busy consumer never reach (a goroutine and a ticker per message cost the warmer about 10 %
// of its CPU).
func (r *runner) keepAlive(msg Msg) (stop func()) {
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	t = time.AfterFunc(r.c.AckWait/2, func() {
		_ = msg.InProgress()
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			t.Reset(r.c.AckWait / 2)
		}
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

// handle runs the handler on msg once slot is granted, again after each TransientError once
// the gate lets it, and settles the message by the first other result.
func (r *runner) handle(msg Msg, slot <-chan struct{}) {
	md, err := msg.Metadata()
	if err != nil {
		md = nil // not a JetStream message: nothing to key its budget on
	}
	var deliveries, seq uint64 = 1, 0
	if md != nil {
		deliveries, seq = md.NumDelivered, md.Sequence.Stream
	}
	// One span per delivery, from its first run to its settlement (runs repeated while the
	// consumer is paused by an outage included).
	ctx, span := r.c.startProcess(r.work, msg, deliveries, seq)
	outcome, cause := "handed_back", error(nil)
	defer func() { endProcess(span, outcome, cause) }()
	var turn *probeTurn // set when this run is the paused consumer's probe
	for {
		<-slot
		if turn == nil && !r.gate.isOpen() {
			// Paused: wait without holding a handler slot, which the probe needs.
			r.slots.release()
			select {
			case <-r.gate.opened():
			case <-r.stop.Done():
				r.handBack(msg)
				return
			}
			slot = r.slots.ticket()
			continue
		}
		start := time.Now()
		err := r.run(ctx, msg)
		took := time.Since(start)
		f, delay := fateOf(err)
		var failures uint64
		if f == fateRetry && md != nil {
			n, lerr := r.ledger.add(r.work, md, err)
			if lerr != nil {
				// The budget cannot be kept while JetStream is in trouble: wait as for an outage.
				r.c.Log.Warn("failure not counted; holding the message", "consumer", r.c.Durable, "err", lerr, "cause", err)
				f, err = fateTransient, Transient(fmt.Errorf("%w (not counted: %w)", err, lerr))
			}
			failures = n
		}
		if f == fateTransient {
			r.slots.release()
			r.observe("transient", md, took)
			r.gate.fail(err)
			turn.finish()
			r.c.Log.Debug("handler failed transiently; holding the message", "consumer", r.c.Durable, "subject", msg.Subject(), "err", err)
			var ok bool
			if turn, ok = r.gate.await(r.stop); !ok {
				r.handBack(msg)
				return
			}
			slot = r.slots.ticket()
			continue
		}
		r.gate.pass()
		turn.finish()
		// The slot is held until the message is settled, so with Concurrency 1 messages are
		// also settled (acked, dead-lettered) in stream order.
		outcome, cause = r.settle(msg, md, f, delay, err, failures, took), err
		r.slots.release()
		return
	}
}

// run runs the handler in the handler slot the caller was granted (the caller releases it);
// a panic is a PermanentError.
func (r *runner) run(ctx context.Context, msg Msg) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("handler panic: %v", p))
		}
	}()
	return r.handler(ctx, msg)
}

// handBack returns a message Consume will not handle (it is stopping) to JetStream at once,
// for another replica; the delivery is not counted.
func (r *runner) handBack(msg Msg) {
	if err := msg.Nak(); err != nil {
		r.c.Log.Warn("nak failed; the message is redelivered after AckWait", "consumer", r.c.Durable, "err", err)
	}
}

// settle acks, retries or dead-letters msg by its handler's result: f and delay (fateOf),
// err, and for a RetryError the message's failures so far, this one included, and returns the
// outcome (ack, retry or dead_letter).
func (r *runner) settle(msg Msg, md *jetstream.MsgMetadata, f fate, delay time.Duration, err error, failures uint64, took time.Duration) string {
	c := r.c
	outcome := "ack"
	switch {
	case f == fateAck:
		if aerr := msg.Ack(); aerr != nil {
			c.Log.Warn("ack failed; the message will be redelivered", "consumer", c.Durable, "err", aerr)
			break
		}
		r.forget(md)
	// A message without metadata has no sequence to count its failures under: it is not
	// retried forever, its first failure dead-letters it.
	case f == fatePermanent || failures >= uint64(c.MaxDeliver) || md == nil:
		outcome = "dead_letter"
		if f == fatePermanent && md != nil {
			n, lerr := r.ledger.count(r.work, md)
			if lerr != nil {
				c.Log.Warn("failure count not read", "consumer", c.Durable, "err", lerr)
			}
			failures = n + 1
		}
		failures = max(failures, 1)
		if derr := DeadLetter(r.work, r.js, r.dlq+"."+c.Stage, msg, err, failures); derr != nil {
			c.Log.Error("dead letter not stored; retrying the message", "consumer", c.Durable, "err", derr, "cause", err)
			outcome = "retry"
			_ = msg.NakWithDelay(c.BackoffMax)
			break
		}
		c.Log.Error("message dead-lettered", "consumer", c.Durable, "subject", msg.Subject(), "failures", failures, "err", err)
		_ = msg.Term()
		r.forget(md)
	default:
		outcome = "retry"
		if delay <= 0 {
			delay = c.backoff(failures)
		}
		c.Log.Warn("message will be retried", "consumer", c.Durable, "subject", msg.Subject(),
			"failures", failures, "max_deliver", c.MaxDeliver, "delay", delay, "err", err)
		_ = msg.NakWithDelay(delay)
	}
	r.observe(outcome, md, took)
	return outcome
}

// forget drops the failure record of a settled message.
func (r *runner) forget(md *jetstream.MsgMetadata) {
	if md == nil {
		return
	}
	if err := r.ledger.forget(r.work, md); err != nil {
		r.c.Log.Debug("failure record not removed; it expires with the bucket's max age", "consumer", r.c.Durable, "err", err)
	}
}

func (r *runner) observe(outcome string, md *jetstream.MsgMetadata, took time.Duration) {
	if r.c.Observe == nil {
		return
	}
	var deliveries uint64 = 1
	if md != nil {
		deliveries = md.NumDelivered
	}
	r.c.Observe(outcome, deliveries, took)
}

// backoff returns the delay after a message's n-th failure: Backoff doubled per failure,
// capped at BackoffMax.
func (c *ConsumerConfig) backoff(n uint64) time.Duration {
	d := c.Backoff
	for i := uint64(1); i < n && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}

// credit counts the messages a Consume may still take: size less those it holds.
type credit struct {
	size int
	mu   sync.Mutex
	free int
	more chan struct{} // signalled when free grows
}

func newCredit(size int) *credit {
	return &credit{size: size, free: size, more: make(chan struct{}, 1)}
}

// take waits until at least atLeast messages are free (or all of them, when fewer), takes
// every free one and returns how many; 0 when ctx ends first.
func (c *credit) take(ctx context.Context, atLeast int) int {
	atLeast = min(atLeast, c.size)
	for {
		c.mu.Lock()
		if n := c.free; n >= atLeast {
			c.free = 0
			c.mu.Unlock()
			return n
		}
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-ctx.Done():
			return 0
		}
	}
}

func (c *credit) give(n int) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	c.free += n
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// slots are the handler slots of a Consume, granted in the order they are asked for.
type slots struct {
	mu    sync.Mutex
	free  int
	queue []chan struct{}
}

func newSlots(n int) *slots { return &slots{free: n} }

// ticket asks for a slot: the channel is closed once the slot is the caller's, who must then
// release it.
func (s *slots) ticket() <-chan struct{} {
	ch := make(chan struct{})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free > 0 && len(s.queue) == 0 {
		s.free--
		close(ch)
		return ch
	}
	s.queue = append(s.queue, ch)
	return ch
}

// release gives a slot back: to the first caller waiting, if any.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		close(s.queue[0])
		s.queue = s.queue[1:]
		return
	}
	s.free++
}
