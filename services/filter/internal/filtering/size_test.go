package filtering_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/filter/internal/filtering"
)

// A batch stored at nearly max_payload (by another publisher, or an ingest older than the
// split) is filtered all the same: its fresh events, which with the changed message's headers
// no longer fit one NATS message, go out as several changed messages, each a valid batch of
// whole consecutive events within max_payload with an id of its own, instead of a publish
// retried for ever.
func TestChangedEventsSplitToFitMaxPayload(t *testing.T) {
	const maxPayload = 8192
	e := newEnvOn(t, draintest.StartNATSWith(t, draintest.NATSOptions{MaxPayload: maxPayload}), "DRAIN_CONCURRENCY=1")
	inst := e.startFilter()
	var evs []ev
	for i := 0; len(body("stuff", evs...)) < maxPayload-150; i++ {
		evs = append(evs, ev{"create", url(fmt.Sprintf("u%04d", i)), 1000})
	}
	seq := e.publishRaw("stuff", body("stuff", evs...))
	e.waitDone(10 * time.Second)

	got := e.changed()
	if len(got) < 2 {
		t.Fatalf("%d changed messages, want the events split", len(got))
	}
	var all []string
	ids := map[string]bool{}
	prefix := filtering.ChangedMsgID(e.names.Stream(stream.Events), seq, "stuff") + "-"
	for i, m := range got {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if !strings.HasPrefix(id, prefix) || ids[id] {
			t.Errorf("changed %d: Nats-Msg-Id %q", i, id)
		}
		ids[id] = true
		for _, ev := range m.Events {
			all = append(all, strings.TrimPrefix(ev.URL, "https://example.com/"))
		}
	}
	var want []string
	for _, ev := range evs {
		want = append(want, strings.TrimPrefix(ev.URL, "https://example.com/"))
	}
	if strings.Join(all, ",") != strings.Join(want, ",") {
		t.Fatalf("changed events %v, want %v", all, want)
	}
	if n := inst.counter("drain_filter_split_messages_total"); int(n) != len(got) {
		t.Errorf("drain_filter_split_messages_total = %v, want %d", n, len(got))
	}
	if n := inst.counter("drain_filter_dead_letters_total"); n != 0 {
		t.Errorf("%v dead letters", n)
	}
}
