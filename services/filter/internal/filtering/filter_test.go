package filtering_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/filter/internal/filtering"
)

func TestBatchesEndToEnd(t *testing.T) {
	// One message at a time, so batches are filtered in stream order (with more, a later batch
	// may be filtered first: each event is still judged by its t alone).
	e := newEnv(t, "DRAIN_CONCURRENCY=1")
	inst := e.startFilter()
	s1 := e.publish("stuff", ev{"create", url("s1"), 1234}, ev{"create", url("s2"), 1234}, ev{"create", url("s3"), 1234}, ev{"create", url("s1"), 1234})
	s2 := e.publish("stuff", ev{"create", url("s1"), 1234}, ev{"create", url("s4"), 1234}, ev{"create", url("s5"), 1234}, ev{"create", url("s2"), 1234})
	e.publish("stuff", ev{"update", url("s1"), 1233}) // stale: nothing published
	s4 := e.publish("other", ev{"update", url("u6"), 10}, ev{"noop", url("u7"), 5}, ev{"update", url("u6"), 12}, ev{"update", url("u6"), 11}, ev{"noop", url("u7"), 6})
	e.waitDone(10 * time.Second)

	got := e.changed()
	want := []struct {
		subject, events string
		seq             uint64
	}{
		{"ft.changed.stuff", "create s1@1234, create s2@1234, create s3@1234", s1},
		{"ft.changed.stuff", "create s4@1234, create s5@1234", s2},
		{"ft.changed.other", "update u6@12, noop u7@6", s4},
	}
	if len(got) != len(want) {
		t.Fatalf("changed messages: %d, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Subject != w.subject || brief(g.Events) != w.events {
			t.Errorf("changed %d = %s [%s], want %s [%s]", i, g.Subject, brief(g.Events), w.subject, w.events)
		}
		if id := g.Header.Get(jetstream.MsgIDHeader); id != filtering.ChangedMsgID("ft_events", w.seq, strings.TrimPrefix(w.subject, "ft.changed.")) {
			t.Errorf("changed %d: Nats-Msg-Id %q", i, id)
		}
		if g.Header.Get(filtering.HeaderSourceStream) != "ft_events" || g.Header.Get(filtering.HeaderSourceSequence) == "" {
			t.Errorf("changed %d: source headers %v", i, g.Header)
		}
	}
	// The events travel byte for byte.
	if raw := string(got[0].Events[0].Raw); raw != `{"topic":"stuff","type":"create","url":"https://example.com/s1","t":1234}` {
		t.Errorf("raw event changed: %s", raw)
	}
	for u, wt := range map[string]int64{"s1": 1234, "s5": 1234, "u6": 12, "u7": 6} {
		if st := e.state(url(u)); st != wt {
			t.Errorf("state of %s = %d, want %d", u, st, wt)
		}
	}
	d := e.dirty()
	for _, u := range []string{"s1", "s2", "s3", "s4", "s5", "u6"} {
		if !d[url(u)] {
			t.Errorf("%s not dirty", u)
		}
	}
	if d[url("u7")] || len(d) != 6 {
		t.Errorf("dirty = %v, want s1..s5 and u6 (noops never mark)", d)
	}
	for name, want := range map[string]float64{
		"drain_filter_events_in_total":    14,
		"drain_filter_events_fresh_total": 7,
		"drain_filter_events_stale_total": 7,
		"drain_filter_newly_dirty_total":  6,
	} {
		if got := inst.counter(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestDirtyMarkingOff(t *testing.T) {
	e := newEnv(t, "DRAIN_FILTER_DIRTY=false")
	e.startFilter()
	e.publish("stuff", ev{"create", url("a"), 1})
	e.waitDone(10 * time.Second)
	if len(e.changed()) != 1 || len(e.dirty()) != 0 {
		t.Fatalf("changed %d, dirty %v", len(e.changed()), e.dirty())
	}
}

func TestUndecodableBatchIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	inst := e.startFilter()
	e.publishRaw("stuff", []byte(`{"not":"a batch"}`))
	e.publish("stuff", ev{"create", url("a"), 1})
	e.waitDone(10 * time.Second)
	dl := e.messages(stream.DLQ)
	if len(dl) != 1 || !strings.Contains(string(dl[0].Events[0].Raw), "not") || dl[0].Subject != "ft.dlq.filter" {
		t.Fatalf("dead letters = %+v", dl)
	}
	if dl[0].Header.Get(stream.HeaderError) == "" {
		t.Errorf("dead letter without a reason: %v", dl[0].Header)
	}
	if len(e.changed()) != 1 {
		t.Fatalf("the good batch after the bad one was not processed")
	}
	if inst.counter("drain_filter_dead_letters_total") != 1 {
		t.Errorf("dead letters metric = %v", inst.counter("drain_filter_dead_letters_total"))
	}
}

// TestRedeliveryAfterCrashBeforePublish reproduces a filter that ran the reorder script for a
// message and died before publishing: the redelivery must publish the same fresh events.
func TestRedeliveryAfterCrashBeforePublish(t *testing.T) {
	e := newEnv(t)
	batch := []ev{{"create", url("a"), 5}, {"update", url("b"), 7}, {"update", url("a"), 9}}
	seq := e.publish("stuff", batch...)
	events, err := event.Parse(body("stuff", batch...))
	if err != nil {
		t.Fatal(err)
	}
	// The first delivery's script run.
	rf, err := reorder.New(e.rdb, e.cfg.ReorderOptions())
	if err != nil {
		t.Fatal(err)
	}
	first, err := rf.Run(context.Background(), seq, events, true)
	if err != nil || len(first.Fresh) != 2 {
		t.Fatalf("first run: %+v %v", first, err)
	}
	e.startFilter()
	e.waitDone(10 * time.Second)
	got := e.changed()
	if len(got) != 1 || len(got[0].Events) != 2 {
		t.Fatalf("changed = %+v, want the two fresh events of the first run", got)
	}
	seen := map[string]bool{}
	for _, ev := range got[0].Events {
		seen[brief([]event.Event{ev})] = true
	}
	if !seen["update a@9"] || !seen["update b@7"] {
		t.Fatalf("changed = %s", brief(got[0].Events))
	}
	if d := e.dirty(); len(d) != 2 {
		t.Fatalf("dirty = %v", d)
	}
}

// TestRedeliveryAfterCrashBeforeAck: everything was done but the ack; the redelivery stores
// nothing new on the changed stream.
func TestRedeliveryAfterCrashBeforeAck(t *testing.T) {
	e := newEnv(t)
	inst := e.startFilter()
	seq := e.publish("stuff", ev{"create", url("a"), 5}, ev{"update", url("b"), 7})
	e.waitDone(10 * time.Second)
	if len(e.changed()) != 1 {
		t.Fatalf("changed = %d messages", len(e.changed()))
	}
	// Deliver the same message again, as JetStream would after a lost ack.
	s, _ := e.js.Stream(context.Background(), "ft_events")
	raw, err := s.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.f.Handle(context.Background(), redelivered{raw}); err != nil {
		t.Fatal(err)
	}
	if got := e.changed(); len(got) != 1 {
		t.Fatalf("changed = %d messages after the redelivery, want 1", len(got))
	}
}

// redelivered is a stored message handed to Handle as its second delivery.
type redelivered struct{ raw *jetstream.RawStreamMsg }

func (r redelivered) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: r.raw.Sequence}, NumDelivered: 2, Stream: "ft_events"}, nil
}
func (r redelivered) Data() []byte                     { return r.raw.Data }
func (r redelivered) Headers() nats.Header             { return r.raw.Header }
func (r redelivered) Subject() string                  { return r.raw.Subject }
func (r redelivered) Reply() string                    { return "" }
func (r redelivered) Ack() error                       { return nil }
func (r redelivered) DoubleAck(context.Context) error  { return nil }
func (r redelivered) Nak() error                       { return nil }
func (r redelivered) NakWithDelay(time.Duration) error { return nil }
func (r redelivered) InProgress() error                { return nil }
func (r redelivered) Term() error                      { return nil }
func (r redelivered) TermWithReason(string) error      { return nil }

func TestCacheModes(t *testing.T) {
	for _, mode := range []string{"bust", "warm"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, "DRAIN_CACHE_MODE="+mode, "DRAIN_CONCURRENCY=1")
			e.startFilter()
			e.publish("stuff", ev{"create", url("a"), 5}, ev{"noop", url("n"), 5}, ev{"update", url("a"), 6})
			e.publish("stuff", ev{"delete", url("a"), 4}) // stale, still busts
			e.waitDone(10 * time.Second)
			ctx := context.Background()
			idx, err := e.rdb.HGet(ctx, cache.Key("rm", url("a")), cache.FieldCurrentIndex).Int64()
			if err != nil || idx != 3 {
				t.Fatalf("index of a = %d (%v), want 3: every non-noop event bumps, fresh or stale", idx, err)
			}
			if n := e.rdb.Exists(ctx, cache.Key("rm", url("n"))).Val(); n != 0 {
				t.Fatalf("a noop bumped the index")
			}
			warms := e.messages(stream.Warm)
			if mode == "bust" {
				if len(warms) != 0 {
					t.Fatalf("bust mode published %d warm requests", len(warms))
				}
				return
			}
			if len(warms) != 3 {
				t.Fatalf("warm requests = %d, want 3 (one per bump)", len(warms))
			}
			// Only the event kept for its URL carries its type; the create superseded inside
			// the batch and the late delete ask for a refresh, so the delete cannot bust the
			// resource updated at t=6.
			wantTypes := []string{cache.WarmRefresh, cache.WarmUpdate, cache.WarmRefresh}
			for i, w := range warms {
				r, err := cache.ParseWarmRequest(w.Events[0].Raw)
				if err != nil || r.URL != url("a") || r.Index != int64(i+1) || r.Type != wantTypes[i] {
					t.Errorf("warm request %d = %+v %v, want type %s", i, r, err, wantTypes[i])
				}
				if id := w.Header.Get(jetstream.MsgIDHeader); id != "" {
					t.Errorf("warm request %d stored with Nats-Msg-Id %q, want none", i, id)
				}
			}
		})
	}
}

// TestDLQReplayAfterScriptRan: the reorder script ran for a message, every publish failed, and
// the message was dead-lettered. Its replay (stored under a new sequence, with the
// Drain-Replay-* headers drainctl dlq replay sets) must hand on the fresh events of the first
// delivery, under the first delivery's Nats-Msg-Id.
func TestDLQReplayAfterScriptRan(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	f, err := filtering.New(e.cfg, e.js, e.rdb, e.rdb, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	seq := e.publish("stuff", ev{"update", url("a"), 5}, ev{"noop", url("b"), 7})

	// The first delivery, through the filter's own consumer, with the changed stream gone:
	// the script runs, the publish fails (a Transient error), and the message is dead-lettered
	// as Consume does (after a panic, say), then terminated.
	if err := e.js.DeleteStream(ctx, e.names.Stream(stream.Changed)); err != nil {
		t.Fatal(err)
	}
	cons, err := stream.EnsureConsumer(ctx, e.js, f.ConsumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	herr := f.Handle(ctx, msg)
	if herr == nil || stream.IsPermanent(herr) {
		t.Fatalf("Handle with the changed stream gone: %v", herr)
	}
	if got := e.state(url("a")); got != 5 {
		t.Fatalf("the script did not run: state of a = %d", got)
	}
	if err := stream.DeadLetter(ctx, e.js, e.names.Subject(stream.DLQ, filtering.ConsumerName), msg, herr, 1); err != nil {
		t.Fatal(err)
	}
	if err := msg.Term(); err != nil {
		t.Fatal(err)
	}
	if err := stream.Declare(ctx, e.js, e.cfg.Streams); err != nil {
		t.Fatal(err)
	}

	// The replay, as drainctl dlq replay stores it (stream.DeadLetters).
	dl, err := stream.OpenDeadLetters(ctx, e.js, e.names)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := dl.List(ctx, stream.Selection{Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r := dl.ReplayMsg(ctx, dead[0]); r.Err != nil || r.StreamSeq == seq {
		t.Fatalf("replay: %+v", r)
	}

	e.startFilter()
	e.waitDone(10 * time.Second)
	got := e.changed()
	if len(got) != 1 || brief(got[0].Events) != "update a@5, noop b@7" {
		t.Fatalf("changed after the replay = %+v, want the first delivery's fresh events", got)
	}
	if id := got[0].Header.Get(jetstream.MsgIDHeader); id != filtering.ChangedMsgID("ft_events", seq, "stuff") {
		t.Errorf("Nats-Msg-Id %q, want the first delivery's", id)
	}
	if s := got[0].Header.Get(filtering.HeaderSourceSequence); s != strconv.FormatUint(seq, 10) {
		t.Errorf("source sequence %q, want %d", s, seq)
	}
	if n := len(e.messages(stream.DLQ)); n != 0 {
		t.Errorf("DLQ holds %d, want none: the replay deleted the dead letter", n)
	}
}

// The index bumps run beside the reorder script: when the cache Redis fails while the script
// succeeds, the message is held, and once the cache Redis answers its redelivery replays what
// the first delivery found fresh, so the warm requests carry the events' own types and the
// changed message is published once.
func TestCacheRedisDownWhileTheScriptRuns(t *testing.T) {
	cacheRedis := draintest.StartRedis(t)
	e := newEnv(t, "DRAIN_CACHE_MODE=warm", "ROUTEMASTER_CACHE_REDIS="+cacheRedis.URL(0, ""))
	_, js := e.nats.Connect(t)
	reg := prometheus.NewRegistry()
	f, err := filtering.New(e.cfg, js, e.redis.Client(t, 0), cacheRedis.Client(t, 0), reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cacheRedis.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("filter Run: %v", err)
		}
	})
	e.publish("stuff", ev{"create", url("c1"), 5}, ev{"update", url("c2"), 6})
	draintest.Eventually(t, 10*time.Second, "the script to record the batch", func() bool { return e.state(url("c2")) == 6 })
	time.Sleep(500 * time.Millisecond) // a retry or two against the stopped cache Redis
	if n := len(e.messages(stream.Warm)) + len(e.changed()); n != 0 {
		t.Fatalf("%d messages published while the cache Redis is down", n)
	}
	cacheRedis.Start()
	e.waitDone(30 * time.Second)
	if n := len(e.changed()); n != 1 {
		t.Fatalf("%d changed messages, want 1", n)
	}
	types := map[string]string{}
	for _, w := range e.messages(stream.Warm) {
		r, err := cache.ParseWarmRequest(w.Events[0].Raw)
		if err != nil {
			t.Fatal(err)
		}
		types[r.URL] = r.Type
	}
	if types[url("c1")] != cache.WarmCreate || types[url("c2")] != cache.WarmUpdate {
		t.Fatalf("warm request types %v, want the events' own (the redelivery replays what was fresh)", types)
	}
}
