package stream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// declare declares the streams of n with the default StreamOptions.
func declare(t *testing.T, js jetstream.JetStream, n stream.Names) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stream.Declare(ctx, js, stream.StreamOptions{Prefix: n.Prefix}); err != nil {
		t.Fatal(err)
	}
}

// TestDeclareIdempotent declares the streams twice, then with changed settings and
// DRAIN_STREAM_MANAGE=update, against the current server and against the nats-server 2.9
// binary when it is installed.
func TestDeclareIdempotent(t *testing.T) {
	servers := map[string]func(draintest.T) *draintest.NATS{
		"current":    draintest.StartNATS,
		"binary-2.9": func(tb draintest.T) *draintest.NATS { return draintest.StartNATSBinary(tb, "nats-server") },
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			nc, js := srv.Connect(t)
			n := stream.Names{Prefix: "rmtest"}
			declare(t, js, n)
			declare(t, js, n)
			s := stream.StreamOptions{Prefix: n.Prefix, MaxAge: time.Hour, Manage: stream.ManageUpdate}
			if err := stream.Declare(context.Background(), js, s); err != nil {
				t.Fatal(err)
			}
			info, err := js.Stream(context.Background(), "rmtest_events")
			if err != nil {
				t.Fatal(err)
			}
			if got := info.CachedInfo().Config; got.MaxAge != time.Hour || got.Subjects[0] != "rmtest.events.>" {
				t.Errorf("events stream config = %+v", got)
			}
			if err := stream.Ready(context.Background(), nc, js, n); err != nil {
				t.Errorf("Ready = %v", err)
			}
			// Publishing the same content twice stores it once.
			body := []byte(`[{"topic":"a","type":"create","url":"http://x.test/1","t":1}]`)
			subj := n.Subject(stream.Events, "a")
			for i := 0; i < 2; i++ {
				m := nats.NewMsg(subj)
				m.Data = body
				if _, err := js.PublishMsg(context.Background(), m, jetstream.WithMsgID(stream.MsgID(subj, body))); err != nil {
					t.Fatal(err)
				}
			}
			info, _ = js.Stream(context.Background(), "rmtest_events")
			if msgs := info.CachedInfo().State.Msgs; msgs != 1 {
				t.Errorf("stored %d messages, want 1", msgs)
			}
			// A consumer works on this server version too.
			got := make(chan stream.Batch, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go stream.Listen(ctx, js, n, "app", func(_ context.Context, b stream.Batch) error {
				got <- b
				return nil
			})
			select {
			case b := <-got:
				if b.Topic != "a" || len(b.Events) != 1 || b.Events[0].URL != "http://x.test/1" {
					t.Errorf("batch = %+v", b)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("listener got nothing")
			}
			// Streams and consumers carry a description and, on servers that keep it (2.10+),
			// the drain's metadata; a 2.9 server ignores it and declaring works all the same.
			cons, err := js.Consumer(context.Background(), "rmtest_events", n.Durable("app"))
			if err != nil {
				t.Fatal(err)
			}
			cc := cons.CachedInfo().Config
			if !strings.Contains(info.CachedInfo().Config.Description, "rmtest.events.>") || !strings.Contains(cc.Description, "rmtest_app") {
				t.Errorf("descriptions: stream %q, consumer %q", info.CachedInfo().Config.Description, cc.Description)
			}
			if name == "binary-2.9" {
				return
			}
			for what, md := range map[string]map[string]string{"stream": info.CachedInfo().Config.Metadata, "consumer": cc.Metadata} {
				stage := map[string]string{"stream": "events", "consumer": "rmtest_app"}[what]
				if md[stream.MetadataPrefix] != "rmtest" || md[stream.MetadataStage] != stage || md[stream.MetadataVersion] == "" {
					t.Errorf("%s metadata = %v, want drain_prefix rmtest, drain_stage %s and a drain_version", what, md, stage)
				}
			}
		})
	}
}

// TestConsumeRetryAndDeadLetter: a failing handler is retried with backoff, then
// dead-lettered with its body, headers and reason once MaxDeliver is reached.
func TestConsumeRetryAndDeadLetter(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "rmtest"}
	declare(t, js, n)

	subj := n.Subject(stream.Warm, "")
	m := nats.NewMsg(subj)
	m.Data = []byte(`{"url":"http://x.test/1"}`)
	m.Header.Set("X-Test", "kept")
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int32
	var outcomes sync.Map
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- stream.Consume(ctx, js, n.Subject(stream.DLQ, ""), stream.ConsumerConfig{
			Stream: n.Stream(stream.Warm), Durable: n.Durable("t"), Stage: "warm",
			MaxDeliver: 3, Backoff: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
			Observe: func(outcome string, _ uint64, _ time.Duration) {
				v, _ := outcomes.LoadOrStore(outcome, new(atomic.Int32))
				v.(*atomic.Int32).Add(1)
			},
		}, func(context.Context, stream.Msg) error {
			calls.Add(1)
			return errors.New("origin down")
		})
	}()

	dlq, err := js.CreateOrUpdateConsumer(context.Background(), n.Stream(stream.DLQ), jetstream.ConsumerConfig{Durable: "check"})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := dlq.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("handler ran %d times, want 3", calls.Load())
	}
	if dead.Subject() != "rmtest.dlq.warm" || string(dead.Data()) != `{"url":"http://x.test/1"}` {
		t.Errorf("dead letter %s %s", dead.Subject(), dead.Data())
	}
	h := dead.Headers()
	if h.Get("X-Test") != "kept" || h.Get(stream.HeaderError) != "origin down" || h.Get(stream.HeaderDeliveries) != "3" ||
		h.Get(stream.HeaderOrigSubject) != subj || h.Get(stream.HeaderOrigSequence) != "1" {
		t.Errorf("dead letter headers = %v", h)
	}
	retries, _ := outcomes.Load("retry")
	dl, _ := outcomes.Load("dead_letter")
	if retries == nil || retries.(*atomic.Int32).Load() != 2 || dl == nil || dl.(*atomic.Int32).Load() != 1 {
		t.Errorf("outcomes retry=%v dead_letter=%v", retries, dl)
	}
}

// TestConsumePermanentAndPanic: Permanent errors and panics dead-letter at the first delivery.
func TestConsumePermanentAndPanic(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "rmtest"}
	declare(t, js, n)
	for _, body := range []string{"permanent", "panic"} {
		if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go stream.Consume(ctx, js, n.Subject(stream.DLQ, ""), stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "p", Stage: "swept"},
		func(_ context.Context, m stream.Msg) error {
			if string(m.Data()) == "panic" {
				panic("boom")
			}
			return stream.Permanent(errors.New("bad message"))
		})
	dlq, _ := js.CreateOrUpdateConsumer(context.Background(), n.Stream(stream.DLQ), jetstream.ConsumerConfig{Durable: "check"})
	batch, err := dlq.Fetch(2, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for m := range batch.Messages() {
		reasons[string(m.Data())] = m.Headers().Get(stream.HeaderError)
		if m.Headers().Get(stream.HeaderDeliveries) != "1" {
			t.Errorf("%s dead-lettered after %s deliveries, want 1", m.Data(), m.Headers().Get(stream.HeaderDeliveries))
		}
	}
	if reasons["permanent"] != "bad message" || reasons["panic"] != "handler panic: boom" {
		t.Errorf("reasons = %v", reasons)
	}
}

// TestTransientNeverDeadLetters: infrastructure failures are retried past MaxDeliver, and the
// message is handled once the outage ends. A consumer deleted by an operator is declared again.
func TestTransientNeverDeadLettersAndConsumerComesBack(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "rmtest"}
	declare(t, js, n)
	if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte(`["http://x.test/1"]`)); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	handled := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "tr", Stage: "swept",
		MaxDeliver: 2, Backoff: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
	go stream.Consume(ctx, js, n.Subject(stream.DLQ, ""), cfg, func(_ context.Context, m stream.Msg) error {
		if calls.Add(1) <= 5 {
			return stream.Transient(errors.New("redis: connection refused"))
		}
		handled <- string(m.Data())
		return nil
	})
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatalf("message not handled after the outage (%d calls)", calls.Load())
	}
	if calls.Load() != 6 {
		t.Errorf("handler ran %d times, want 6", calls.Load())
	}
	info, _ := js.Stream(context.Background(), n.Stream(stream.DLQ))
	if msgs := info.CachedInfo().State.Msgs; msgs != 0 {
		t.Errorf("%d dead letters, want 0", msgs)
	}

	// An operator deletes the consumer: Consume declares it again and keeps going.
	if err := js.DeleteConsumer(context.Background(), n.Stream(stream.Swept), "tr"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte(`["http://x.test/2"]`)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-handled:
			if got != `["http://x.test/1"]` { // DeliverAll: the re-declared consumer starts over
				return
			}
			continue
		case <-time.After(2 * time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatal("no message handled after the consumer was deleted")
		}
	}
}

// The outermost result decides: a Transient wrapping a Permanent is retried past MaxDeliver
// and never dead-lettered. Transient deliveries do not spend the budget: with MaxDeliver 2,
// the first budgeted failure after three outages is retried, not dead-lettered. RetryAfter's
// delay replaces the backoff.
func TestResultPrecedenceAndRetryAfter(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "rp"}
	declare(t, js, n)
	if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	var calls []time.Time
	var mu sync.Mutex
	handled := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "rp", Stage: "swept",
		MaxDeliver: 2, Backoff: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond}
	go stream.Consume(ctx, js, n.Subject(stream.DLQ, ""), cfg, func(context.Context, stream.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, time.Now())
		switch len(calls) {
		case 1, 2:
			return stream.Transient(fmt.Errorf("publish: %w", stream.Permanent(errors.New("inner"))))
		case 3:
			return stream.Transient(stream.RetryAfter(time.Hour, errors.New("inner retry")))
		case 4:
			return stream.RetryAfter(400*time.Millisecond, errors.New("later"))
		}
		close(handled)
		return nil
	})
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("message not handled")
	}
	mu.Lock()
	defer mu.Unlock()
	if gap := calls[4].Sub(calls[3]); gap < 350*time.Millisecond {
		t.Errorf("redelivered %v after RetryAfter(400ms)", gap)
	}
	if gap := calls[3].Sub(calls[2]); gap > 5*time.Second {
		t.Errorf("Transient(RetryAfter(1h)) waited %v, want the consumer backoff", gap)
	}
	info, _ := js.Stream(context.Background(), n.Stream(stream.DLQ))
	if msgs := info.CachedInfo().State.Msgs; msgs != 0 {
		t.Errorf("%d dead letters, want 0", msgs)
	}
}

// TestConsumeWaitsForItsStream: Consume started before its stream exists (a cluster still
// placing it) keeps declaring its consumer and handles the stream's messages once it appears.
func TestConsumeWaitsForItsStream(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "late"}
	handled := make(chan struct{}, 1)
	returned := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "late", Stage: "swept"}
	go func() {
		returned <- stream.Consume(ctx, js, n.Subject(stream.DLQ, ""), cfg, func(context.Context, stream.Msg) error {
			handled <- struct{}{}
			return nil
		})
	}()
	time.Sleep(1500 * time.Millisecond)
	declare(t, js, n)
	if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-handled:
	case err := <-returned:
		t.Fatalf("Consume returned %v before its stream existed", err)
	case <-time.After(10 * time.Second):
		t.Fatal("message not handled within 10 s of its stream's creation")
	}
	cancel()
	if err := <-returned; err != nil {
		t.Fatalf("Consume returned %v at cancellation", err)
	}
}

// A handler running several times AckWait keeps its message: the server is told it is in
// progress, so the message is delivered once, to this handler, and acked when it returns.
func TestSlowHandlerIsKeptAlive(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "rmtest"}
	declare(t, js, n)
	if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte("slow")); err != nil {
		t.Fatal(err)
	}
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "slow", Stage: "swept", AckWait: time.Second, Concurrency: 4}
	var calls atomic.Int32
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go stream.Consume(ctx, js, n.Subject(stream.DLQ, ""), cfg, func(context.Context, stream.Msg) error {
		if calls.Add(1) == 1 {
			time.Sleep(3500 * time.Millisecond)
			close(done)
		}
		return nil
	})
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the handler never finished")
	}
	cons, err := js.Consumer(context.Background(), n.Stream(stream.Swept), "slow")
	if err != nil {
		t.Fatal(err)
	}
	draintest.Eventually(t, 5*time.Second, "the ack", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.AckFloor.Stream == 1
	})
	time.Sleep(1500 * time.Millisecond) // past another AckWait: nothing comes back
	if c := calls.Load(); c != 1 {
		t.Fatalf("the handler ran %d times; a message kept alive is delivered once", c)
	}
}
