package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// SplitBatch packs events into valid batches within the limit, in order, every event in one of
// them, and each part is stored by a server whose max_payload is that small.
func TestSplitBatchFitsMaxPayload(t *testing.T) {
	srv := draintest.StartNATSWith(t, draintest.NATSOptions{MaxPayload: 8192})
	nc, js := srv.Connect(t)
	n := stream.Names{Prefix: "split"}
	declare(t, js, n)
	limit := stream.BatchLimit(nc.MaxPayload())
	if limit != 8192-2048 {
		t.Fatalf("BatchLimit(8192) = %d", limit)
	}
	var events []event.Event
	for i := range 60 {
		raw := fmt.Sprintf(`{"topic":"t","type":"update","url":"https://x.test/%d","t":%d,"data":{"pad":%q}}`, i, i, strings.Repeat("x", i*7))
		events = append(events, event.Event{Topic: "t", Type: event.Update, URL: fmt.Sprintf("https://x.test/%d", i), T: int64(i), Raw: json.RawMessage(raw)})
	}
	parts, err := stream.SplitBatch(events, limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 3 {
		t.Fatalf("%d parts, want several", len(parts))
	}
	var back []event.Event
	subject := n.Subject(stream.Events, "t")
	var msgs []*nats.Msg
	for _, p := range parts {
		if len(p) > limit {
			t.Errorf("part of %d bytes > %d", len(p), limit)
		}
		got, err := event.Parse(p)
		if err != nil {
			t.Fatalf("part is not a valid batch: %v", err)
		}
		back = append(back, got...)
		msgs = append(msgs, &nats.Msg{Subject: subject, Data: p})
	}
	for i := range events {
		if back[i].URL != events[i].URL || string(back[i].Raw) != string(events[i].Raw) {
			t.Fatalf("event %d = %s, want %s", i, back[i].Raw, events[i].Raw)
		}
	}
	if len(back) != len(events) {
		t.Fatalf("%d events back, want %d", len(back), len(events))
	}
	ajs, _ := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err := stream.PublishAll(context.Background(), ajs, 5*time.Second, msgs); err != nil {
		t.Fatalf("parts not stored: %v", err)
	}

	big := event.Event{Raw: json.RawMessage(`{"data":"` + strings.Repeat("y", limit) + `"}`)}
	_, err = stream.SplitBatch([]event.Event{events[0], big}, limit)
	var over *stream.OversizeEventError
	if !errors.As(err, &over) || over.Index != 1 || over.Limit != limit {
		t.Fatalf("an event larger than the limit: %v", err)
	}
}

// A dead letter always fits max_payload: with a long error, Drain-Error is cut short and the
// body kept; when even that does not fit, the dead letter names the original instead of
// carrying it, and a replay reads the original from its stream. Neither message is retried
// for its size.
func TestDeadLetterFitsMaxPayload(t *testing.T) {
	srv := draintest.StartNATSWith(t, draintest.NATSOptions{MaxPayload: 8192})
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "dlsize"}
	declare(t, js, n)
	subject := n.Subject(stream.Swept, "")
	bodies := map[string][]byte{
		"long-error": []byte(`"` + strings.Repeat("a", 6800) + `"`),
		"at-limit":   []byte(`"` + strings.Repeat("b", 8192-200) + `"`),
	}
	for name, body := range bodies {
		m := nats.NewMsg(subject)
		m.Data = body
		m.Header.Set("X-Case", name)
		if name == "at-limit" { // itself a replay of the message at sequence 1
			m.Header.Set(stream.HeaderReplayStream, n.Stream(stream.Swept))
			m.Header.Set(stream.HeaderReplaySequence, "1")
		}
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	longErr := strings.Repeat("the origin said something long; ", 200)
	cfg := stream.ConsumerConfig{Stream: n.Stream(stream.Swept), Durable: "dlsize", Stage: "swept",
		Backoff: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
	stop := consumeFor(t, js, n, cfg, func(context.Context, stream.Msg) error {
		return stream.Permanent(errors.New(longErr))
	})
	draintest.Eventually(t, 10*time.Second, "two dead letters", func() bool { return deadLetterCount(t, js, n) == 2 })
	stop()
	dl, err := stream.OpenDeadLetters(context.Background(), js, n)
	if err != nil {
		t.Fatal(err)
	}
	letters, err := dl.List(context.Background(), stream.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range letters {
		switch {
		case string(l.Data) == string(bodies["long-error"]):
			if l.Header.Get("X-Case") != "long-error" || !strings.HasPrefix(longErr, strings.SplitN(l.Error, " [truncated", 2)[0]) ||
				!strings.Contains(l.Error, "truncated") || len(l.Error) > 1024 {
				t.Errorf("long-error dead letter: headers %v, error %d bytes %q", l.Header, len(l.Error), l.Error)
			}
		case len(l.Data) == 0:
			if l.Header.Get(stream.HeaderBodyOmitted) != fmt.Sprint(len(bodies["at-limit"])) || l.OrigSeq == 0 || l.Error == "" {
				t.Errorf("at-limit dead letter: headers %v", l.Header)
			}
		default:
			t.Errorf("unexpected dead letter of %d bytes: %v", len(l.Data), l.Header)
		}
	}

	// The replays carry the original bodies and headers again.
	var replayed []stream.Replayed
	if err := dl.Replay(context.Background(), stream.Selection{}, func(r stream.Replayed) error {
		replayed = append(replayed, r)
		return r.Err
	}); err != nil {
		t.Fatal(err)
	}
	if len(replayed) != 2 {
		t.Fatalf("%d replays", len(replayed))
	}
	s, err := js.Stream(context.Background(), n.Stream(stream.Swept))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range replayed {
		m, err := s.GetMsg(context.Background(), r.StreamSeq)
		if err != nil {
			t.Fatal(err)
		}
		name := m.Header.Get("X-Case")
		if string(m.Data) != string(bodies[name]) {
			t.Errorf("replay %d (%q): %d bytes, want the original's %d", r.StreamSeq, name, len(m.Data), len(bodies[name]))
		}
		if name == "at-limit" && m.Header.Get(stream.HeaderReplaySequence) != "1" {
			t.Errorf("replay of a replay names sequence %q, want the first message's 1", m.Header.Get(stream.HeaderReplaySequence))
		}
	}
	if deadLetterCount(t, js, n) != 0 {
		t.Errorf("dead letters left after the replay")
	}
}
