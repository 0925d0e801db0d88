package stream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

func msgs(subjects ...string) []*nats.Msg {
	out := make([]*nats.Msg, len(subjects))
	for i, s := range subjects {
		out[i] = nats.NewMsg(s)
		out[i].Data = []byte(`["` + s + `"]`)
	}
	return out
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// Every message is stored once however often PublishAll runs; one JetStream refuses is
// reported by index while the others are still stored and acknowledged.
func TestPublishAll(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "pa"}
	declare(t, js, n)
	ctx := context.Background()
	batch := msgs(n.Subject(stream.Events, "a"), n.Subject(stream.Events, "b"), n.Subject(stream.Siphon, "c"))
	for range 2 {
		if err := stream.PublishAll(ctx, js, 5*time.Second, batch); err != nil {
			t.Fatal(err)
		}
	}
	if got := streamMsgs(t, js, n.Stream(stream.Events)); got != 2 {
		t.Fatalf("events stream holds %d, want 2 (the second call deduplicated)", got)
	}
	if id := batch[0].Header.Get(jetstream.MsgIDHeader); id != stream.MsgID(batch[0].Subject, batch[0].Data) {
		t.Fatalf("Nats-Msg-Id %q, want the content's", id)
	}

	mixed := msgs(n.Subject(stream.Events, "d"), "nowhere.x", n.Subject(stream.Events, "e"))
	err := stream.PublishAll(ctx, js, 5*time.Second, mixed)
	var perr *stream.PublishError
	if !errors.As(err, &perr) || len(perr.Failed) != 1 || perr.Failed[0].Index != 1 || !perr.Settled ||
		!errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("publish with one subject outside every stream: %#v (%v)", perr, err)
	}
	if got := streamMsgs(t, js, n.Stream(stream.Events)); got != 4 {
		t.Fatalf("events stream holds %d, want 4: the other two were stored", got)
	}

	// A message marked NoMsgID goes out without an id: publishing it twice stores it twice.
	unkeyed := stream.NoMsgID(msgs(n.Subject(stream.Events, "f"))[0])
	for range 2 {
		if err := stream.PublishAll(ctx, js, 5*time.Second, []*nats.Msg{unkeyed}); err != nil {
			t.Fatal(err)
		}
	}
	if got := streamMsgs(t, js, n.Stream(stream.Events)); got != 6 {
		t.Fatalf("events stream holds %d, want 6: a NoMsgID message is stored each time", got)
	}
	s, err := js.Stream(ctx, n.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.GetLastMsgForSubject(ctx, n.Subject(stream.Events, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if id := last.Header.Get(jetstream.MsgIDHeader); id != "" {
		t.Fatalf("NoMsgID message stored with Nats-Msg-Id %q", id)
	}
}

// A message nobody acknowledges (a core subscriber swallows it, as a stalled stream would)
// fails with ErrAckTimeout once the timeout passed, unsettled; the others are acknowledged.
func TestPublishAllTimeout(t *testing.T) {
	srv := draintest.StartNATS(t)
	nc, js := srv.Connect(t)
	n := stream.Names{Prefix: "pt"}
	declare(t, js, n)
	if _, err := nc.Subscribe("silent.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := stream.PublishAll(context.Background(), js, 300*time.Millisecond,
		msgs(n.Subject(stream.Events, "a"), "silent.b", n.Subject(stream.Events, "c")))
	took := time.Since(start)
	var perr *stream.PublishError
	if !errors.As(err, &perr) || len(perr.Failed) != 1 || perr.Failed[0].Index != 1 || perr.Settled ||
		!errors.Is(err, stream.ErrAckTimeout) {
		t.Fatalf("publish with a silent subject: %#v (%v)", perr, err)
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Fatalf("returned after %v, want about the 300ms timeout", took)
	}
	if got := streamMsgs(t, js, n.Stream(stream.Events)); got != 2 {
		t.Fatalf("events stream holds %d, want 2", got)
	}
}

// With NATS stopped mid-test nothing is acknowledged, and PublishAll returns by its timeout;
// once NATS is back the same messages are stored.
func TestPublishAllNATSStopped(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "ps"}
	declare(t, js, n)
	batch := msgs(n.Subject(stream.Events, "a"), n.Subject(stream.Events, "b"))
	srv.Stop()
	start := time.Now()
	err := stream.PublishAll(context.Background(), js, 500*time.Millisecond, batch)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("publish with NATS stopped: %v after %v", err, time.Since(start))
	}
	var perr *stream.PublishError
	if !errors.As(err, &perr) || len(perr.Failed) != 2 {
		t.Fatalf("publish with NATS stopped: %v, want both messages reported", err)
	}
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for stream.PublishAll(context.Background(), js, time.Second, batch) != nil {
		if time.Now().After(deadline) {
			t.Fatal("not stored after NATS came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := streamMsgs(t, js, n.Stream(stream.Events)); got != 2 {
		t.Fatalf("events stream holds %d, want 2", got)
	}
}
