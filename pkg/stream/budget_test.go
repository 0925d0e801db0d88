package stream_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// consumeFor runs stream.Consume with cfg and handler in the background; the returned stop
// cancels it and waits for it to return.
func consumeFor(t *testing.T, js jetstream.JetStream, n stream.Names, cfg stream.ConsumerConfig, handler stream.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stream.Consume(ctx, js, n.Subject(stream.DLQ, ""), cfg, handler) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Consume: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Consume did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func deadLetterCount(t *testing.T, js jetstream.JetStream, n stream.Names) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), n.Stream(stream.DLQ))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func consumerInfo(t *testing.T, js jetstream.JetStream, streamName, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(context.Background(), streamName, durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// A Redis outage longer than many backoffs, with messages in flight and a replica handing
// them over to another mid-outage (a restart or a scale-down), spends none of the delivery
// budget: with MaxDeliver 3, each message's first real failure after the outage is retried,
// not dead-lettered. While Redis is down the consumer pauses: the messages it holds are not
// redelivered, and it resumes within a probe interval (at most 1 s) of Redis coming back.
func TestRedisOutageSpendsNoBudget(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	rs := draintest.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	n := stream.Names{Prefix: "budget"}
	declare(t, js, n)
	bodies := []string{"a", "b", "c"}
	for _, b := range bodies {
		if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte(b)); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	failedOnce := map[string]bool{}
	acked := map[string]bool{}
	var calls atomic.Int64
	handler := func(ctx context.Context, m stream.Msg) error {
		calls.Add(1)
		if err := rdb.Incr(ctx, "calls:"+string(m.Data())).Err(); err != nil {
			return stream.RedisFailure(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if !failedOnce[string(m.Data())] {
			failedOnce[string(m.Data())] = true
			return stream.RetryAfter(50*time.Millisecond, errors.New("origin answered 503"))
		}
		acked[string(m.Data())] = true
		return nil
	}
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "budget", Stage: "swept",
		Concurrency: 3, MaxDeliver: 3, AckWait: time.Second, Backoff: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond}

	rs.Stop()
	stopA := consumeFor(t, js, n, cfg, handler)
	draintest.Eventually(t, 10*time.Second, "every message tried during the outage", func() bool { return calls.Load() >= 3 })
	time.Sleep(2500 * time.Millisecond) // dozens of backoffs, and more than two AckWaits
	info := consumerInfo(t, js, n.Stream(stream.Swept), "budget")
	if info.Delivered.Consumer != uint64(len(bodies)) || info.NumRedelivered != 0 {
		t.Errorf("during the outage: %d deliveries (%d redelivered) of %d messages, want each delivered once and held",
			info.Delivered.Consumer, info.NumRedelivered, len(bodies))
	}
	if c := calls.Load(); c > 2500/20+10 {
		t.Errorf("%d handler calls in 2.5 s of outage: the consumer did not pause", c)
	}

	// The replica goes away mid-outage; another takes the messages over and sees the end of it.
	stopA()
	stopB := consumeFor(t, js, n, cfg, handler)
	defer stopB()
	time.Sleep(500 * time.Millisecond)
	rs.Start()
	up := time.Now()
	draintest.Eventually(t, 15*time.Second, "every message acked after the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) == len(bodies)
	})
	if d := time.Since(up); d > 5*time.Second {
		t.Errorf("resumed %v after Redis came back", d)
	}
	if dl := deadLetterCount(t, js, n); dl != 0 {
		t.Fatalf("%d dead letters: the outage spent the delivery budget", dl)
	}
}

// Deliveries that did not fail (a crashed process's, an expired AckWait's) are not charged:
// a message delivered four times without an answer still has MaxDeliver 3 attempts.
func TestCrashRedeliveriesSpendNoBudget(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "crash"}
	declare(t, js, n)
	if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte("m")); err != nil {
		t.Fatal(err)
	}
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "crash", Stage: "swept",
		MaxDeliver: 3, AckWait: 300 * time.Millisecond, Backoff: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
	cons, err := stream.EnsureConsumer(context.Background(), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Four processes take the message and die before answering.
	for i := range 4 {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for range b.Messages() {
			got++
		}
		if got != 1 {
			t.Fatalf("crash %d: fetched %d messages (%v)", i, got, b.Error())
		}
		time.Sleep(400 * time.Millisecond)
	}
	var calls atomic.Int32
	done := make(chan struct{})
	consumeFor(t, js, n, cfg, func(context.Context, stream.Msg) error {
		if calls.Add(1) <= 2 {
			return errors.New("origin answered 503")
		}
		close(done)
		return nil
	})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("message not acked (%d calls, %d dead letters)", calls.Load(), deadLetterCount(t, js, n))
	}
	if dl := deadLetterCount(t, js, n); dl != 0 {
		t.Fatalf("%d dead letters: crash redeliveries were charged to the budget", dl)
	}
}

// The budget is shared by every replica: a message failing everywhere is dead-lettered after
// exactly MaxDeliver failures in all, wherever they happened, and its dead letter says so.
func TestBudgetIsSharedByReplicas(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "shared"}
	declare(t, js, n)
	if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte("m")); err != nil {
		t.Fatal(err)
	}
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "shared", Stage: "swept",
		MaxDeliver: 4, Backoff: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
	var calls atomic.Int32
	fail := func(context.Context, stream.Msg) error {
		calls.Add(1)
		return errors.New("origin answered 500")
	}
	consumeFor(t, js, n, cfg, fail)
	consumeFor(t, js, n, cfg, fail)
	draintest.Eventually(t, 10*time.Second, "a dead letter", func() bool { return deadLetterCount(t, js, n) == 1 })
	time.Sleep(200 * time.Millisecond)
	if c := calls.Load(); c != 4 {
		t.Errorf("handler ran %d times, want MaxDeliver = 4", c)
	}
	dl, err := stream.OpenDeadLetters(context.Background(), js, n)
	if err != nil {
		t.Fatal(err)
	}
	letters, err := dl.List(context.Background(), stream.Selection{})
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters %v, %v", letters, err)
	}
	if letters[0].Deliveries != 4 {
		t.Errorf("Drain-Deliveries = %d, want 4", letters[0].Deliveries)
	}
}

// Messages waiting for a handler slot are kept alive: with one slot, a slow handler and an
// AckWait shorter than the wait, no message is redelivered or handled twice.
func TestWaitingMessagesAreKeptAlive(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "alive"}
	declare(t, js, n)
	for _, b := range []string{"1", "2", "3"} {
		if _, err := js.Publish(context.Background(), n.Subject(stream.Swept, ""), []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "alive", Stage: "swept",
		Concurrency: 1, AckWait: 600 * time.Millisecond}
	consumeFor(t, js, n, cfg, func(_ context.Context, m stream.Msg) error {
		mu.Lock()
		seen[string(m.Data())]++
		mu.Unlock()
		time.Sleep(900 * time.Millisecond)
		return nil
	})
	draintest.Eventually(t, 15*time.Second, "three messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 3
	})
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	for b, c := range seen {
		if c != 1 {
			t.Errorf("message %s handled %d times", b, c)
		}
	}
	if info := consumerInfo(t, js, n.Stream(stream.Swept), "alive"); info.Delivered.Consumer != 3 {
		t.Errorf("%d deliveries of 3 messages", info.Delivered.Consumer)
	}
}
