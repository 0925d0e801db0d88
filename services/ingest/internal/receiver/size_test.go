package receiver_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// sizedBatch returns a compact batch of n events over the topics, each about size bytes.
func sizedBatch(n, size int, topics ...string) string {
	evs := make([]string, n)
	for i := range n {
		head := fmt.Sprintf(`{"topic":%q,"type":"update","url":"https://x.test/%d","t":%d,"data":{"p":"`, topics[i%len(topics)], i, 1000+i)
		evs[i] = head + strings.Repeat("p", max(0, size-len(head)-3)) + `"}}`
	}
	return "[" + strings.Join(evs, ",") + "]"
}

// A batch within DRAIN_INGEST_MAX_BODY is stored whatever the server's max_payload: each
// topic is split into messages that fit, each a valid batch of whole consecutive events with
// its own content-derived Nats-Msg-Id, and the 204 comes after all of them are stored. The
// bus's resend of the same bytes stores nothing new. An event that cannot fit a message even
// alone is refused with 413 naming it.
func TestBatchLargerThanMaxPayload(t *testing.T) {
	e := startOn(t, draintest.StartNATSWith(t, draintest.NATSOptions{MaxPayload: 16 << 10}), "DRAIN_INGEST_MAX_BODY=262144")
	e.declare(t)
	limit := stream.BatchLimit(16 << 10)
	batch := sizedBatch(300, 600, "alpha", "beta")
	if len(batch) < 150<<10 {
		t.Fatalf("batch of %d bytes: too small for the test", len(batch))
	}
	for round := range 2 {
		if r := e.post(t, batch); r.code != 204 {
			t.Fatalf("round %d: %d %s", round, r.code, r.body)
		}
	}
	want, err := event.Parse([]byte(batch))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	stored := e.stored(t, stream.Events)
	ids := map[string]bool{}
	for _, m := range stored {
		if len(m.Data) > limit {
			t.Errorf("message of %d bytes, over the limit %d", len(m.Data), limit)
		}
		if m.MsgID != stream.MsgID(m.Subject, []byte(m.Data)) || ids[m.MsgID] {
			t.Errorf("Nats-Msg-Id %q of a %d-byte message: not its own content's", m.MsgID, len(m.Data))
		}
		ids[m.MsgID] = true
		evs, err := event.Parse([]byte(m.Data))
		if err != nil {
			t.Fatalf("stored message is not a valid batch: %v", err)
		}
		for _, ev := range evs {
			if m.Subject != e.names.Subject(stream.Events, ev.Topic) {
				t.Errorf("event of topic %s on %s", ev.Topic, m.Subject)
			}
			got[ev.Topic] = append(got[ev.Topic], string(ev.Raw))
		}
	}
	if len(stored) < len(batch)/limit+1 {
		t.Errorf("%d messages for a %d-byte batch and a %d-byte limit", len(stored), len(batch), limit)
	}
	for _, topic := range []string{"alpha", "beta"} {
		var inOrder []string
		for _, ev := range want {
			if ev.Topic == topic {
				inOrder = append(inOrder, string(ev.Raw))
			}
		}
		if strings.Join(got[topic], ",") != strings.Join(inOrder, ",") {
			t.Errorf("topic %s: %d events stored, want the batch's %d in order", topic, len(got[topic]), len(inOrder))
		}
	}
	if v, _ := draintest.Metric(t, e.reg, "drain_ingest_split_messages_total"); int(v) < len(stored) {
		t.Errorf("drain_ingest_split_messages_total = %v, want at least %d (both rounds)", v, len(stored))
	}

	// One event larger than a message can ever be.
	huge := sizedBatch(1, 20<<10, "alpha")
	two := "[" + strings.TrimSuffix(strings.TrimPrefix(sizedBatch(1, 100, "alpha"), "["), "]") + "," + huge[1:]
	r := e.post(t, two)
	var body struct{ Error string }
	_ = json.Unmarshal([]byte(r.body), &body)
	if r.code != 413 || !strings.HasPrefix(body.Error, "event 1 is ") || !strings.Contains(body.Error, "can never store it") {
		t.Fatalf("an event over max_payload: %d %s", r.code, r.body)
	}
	if n := len(e.stored(t, stream.Events)); n != len(stored) {
		t.Errorf("%d messages after the refused batch, want %d", n, len(stored))
	}
}

// At the default settings (DRAIN_INGEST_MAX_BODY and max_payload both 1 MiB) a body just
// under DRAIN_INGEST_MAX_BODY is stored, not answered 503 for ever.
func TestMaxBodyBatchAtDefaultMaxPayload(t *testing.T) {
	e := start(t)
	e.declare(t)
	batch := sizedBatch(1, 1<<20-18, "alpha")
	if len(batch) != 1<<20-16 {
		t.Fatalf("batch is %d bytes", len(batch))
	}
	// One event of nearly 1 MiB cannot fit a message with its headers: 413, never a 503.
	if r := e.post(t, batch); r.code != 413 {
		t.Fatalf("one %d-byte event: %d %s", len(batch), r.code, r.body)
	}
	batch = sizedBatch(1700, 600, "alpha")
	batch = batch[:len(batch)-1] + "," + sizedBatch(1, 1<<20-16-len(batch)-1, "alpha")[1:]
	if len(batch) != 1<<20-16 {
		t.Fatalf("batch is %d bytes", len(batch))
	}
	if r := e.post(t, batch); r.code != 204 {
		t.Fatalf("a %d-byte batch: %d %s", len(batch), r.code, r.body)
	}
	if n := len(e.stored(t, stream.Events)); n != 2 {
		t.Fatalf("%d messages, want the 1 MiB batch of one topic split in two", n)
	}
}
