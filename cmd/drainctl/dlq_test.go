package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

const dlqPrefix = "dlqt"

// dlqWorld is a private JetStream with the drain's streams declared under dlqPrefix.
type dlqWorld struct {
	env   []string
	js    jetstream.JetStream
	names stream.Names
}

func newDLQWorld(t *testing.T) *dlqWorld {
	t.Helper()
	return newDLQWorldOn(t, draintest.StartNATS(t))
}

func newDLQWorldOn(t *testing.T, srv *draintest.NATS) *dlqWorld {
	t.Helper()
	_, js := srv.Connect(t)
	w := &dlqWorld{
		env:   []string{"NATS_URL=" + srv.URL(), "DRAIN_PREFIX=" + dlqPrefix},
		js:    js,
		names: stream.Names{Prefix: dlqPrefix},
	}
	if err := stream.Declare(ctx, js, stream.StreamOptions{Prefix: dlqPrefix}); err != nil {
		t.Fatal(err)
	}
	return w
}

// publish stores body on subject with an application header and a Nats-Msg-Id, as ingest and
// the filter do.
func (w *dlqWorld) publish(t *testing.T, subject, body, trace string) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(body)
	m.Header.Set("X-Trace", trace)
	if _, err := w.js.PublishMsg(ctx, m, jetstream.WithMsgID(stream.MsgID(subject, m.Data))); err != nil {
		t.Fatal(err)
	}
}

// deadLetter consumes kind's stream with a handler that always fails, until n messages are
// dead-lettered: permanently at once, or after maxDeliver deliveries.
func (w *dlqWorld) deadLetter(t *testing.T, kind stream.Kind, stage string, permanent bool, maxDeliver, n int) {
	t.Helper()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	var deadLettered = make(chan struct{}, 100)
	go func() {
		done <- stream.Consume(cctx, w.js, w.names.Subject(stream.DLQ, ""), stream.ConsumerConfig{
			Stream: w.names.Stream(kind), Durable: w.names.Durable(stage), Stage: stage,
			MaxDeliver: maxDeliver, Backoff: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Observe: func(outcome string, _ uint64, _ time.Duration) {
				if outcome == "dead_letter" {
					deadLettered <- struct{}{}
				}
			},
		}, func(context.Context, stream.Msg) error {
			if permanent {
				return stream.Permanent(errors.New("host not allowed:\nbad.example.com"))
			}
			return errors.New("origin answered 503")
		})
	}()
	for range n {
		select {
		case <-deadLettered:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: not dead-lettered in time", stage)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func (w *dlqWorld) stream(t *testing.T, k stream.Kind) *jetstream.StreamInfo {
	t.Helper()
	s, err := w.js.Stream(ctx, w.names.Stream(k))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// lastOn returns the last message stored on subject in kind's stream.
func (w *dlqWorld) lastOn(t *testing.T, k stream.Kind, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := w.js.Stream(ctx, w.names.Stream(k))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDLQListAndReplay runs against the embedded server and against the nats-server 2.9
// binary a Linux distribution ships, when it is installed.
func TestDLQListAndReplay(t *testing.T) {
	servers := map[string]func(draintest.T) *draintest.NATS{
		"current":    draintest.StartNATS,
		"binary-2.9": func(tb draintest.T) *draintest.NATS { return draintest.StartNATSBinary(tb, "nats-server") },
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) { testDLQListAndReplay(t, newDLQWorldOn(t, start(t))) })
	}
}

func testDLQListAndReplay(t *testing.T, w *dlqWorld) {
	orders := w.names.Subject(stream.Events, "orders")
	warm := w.names.Subject(stream.Warm, "")
	w.publish(t, orders, `[{"topic":"orders","type":"update","url":"https://o.example.com/1","t":1}]`, "trace-1")
	w.publish(t, orders, `[{"topic":"orders","type":"update","url":"https://o.example.com/2","t":2}]`, "trace-2")
	w.publish(t, warm, `{"url":"https://o.example.com/3","type":"update","t":3,"index":1}`, "trace-3")
	w.deadLetter(t, stream.Events, "filter", true, 20, 2)
	w.deadLetter(t, stream.Warm, "warm", false, 2, 1)

	// list: one line per dead letter, oldest first; nothing consumed, no consumer left behind.
	r := run(w.env, "dlq", "list")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("list: %+v", r)
	}
	for i, want := range [][]string{
		{"1", "filter", orders, "1", "host not allowed: bad.example.com"},
		{"2", "filter", orders, "1", "host not allowed: bad.example.com"},
		{"3", "warm", warm, "2", "origin answered 503"},
	} {
		f := strings.Fields(lines[i])
		if len(f) < 6 || f[0] != want[0] || f[1] != want[1] || f[2] != want[2] || f[3] != want[3] ||
			!strings.HasSuffix(lines[i], want[4]) {
			t.Fatalf("line %d: %q, want %v", i, lines[i], want)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[4]); err != nil {
			t.Fatalf("line %d: dead-lettered-at %q: %v", i, f[4], err)
		}
	}
	same := func(a, b string) bool {
		return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
	}
	if got := run(w.env, "dlq", "list", "--limit", "1"); !same(got.stdout, lines[0]) {
		t.Fatalf("list --limit 1: %+v", got)
	}
	if got := run(w.env, "dlq", "list", "--stage", "warm"); !same(got.stdout, lines[2]) {
		t.Fatalf("list --stage warm: %+v", got)
	}

	var listed []DeadLetter
	r = run(w.env, "dlq", "list", "--json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &listed) != nil || len(listed) != 3 {
		t.Fatalf("list --json: %+v", r)
	}
	d := listed[2]
	if d.Seq != 3 || d.Stage != "warm" || d.Subject != warm || d.Deliveries != 2 || d.Error != "origin answered 503" ||
		d.OriginalStream != w.names.Stream(stream.Warm) || d.OriginalSeq != 1 || d.DeadLetteredAt == "" ||
		d.Body != `{"url":"https://o.example.com/3","type":"update","t":3,"index":1}` ||
		d.Headers["X-Trace"][0] != "trace-3" || d.Headers[stream.HeaderStage][0] != "warm" {
		t.Fatalf("list --json [2]: %+v", d)
	}
	if info := w.stream(t, stream.DLQ); info.State.Msgs != 3 || info.State.Consumers != 0 {
		t.Fatalf("after list: %d messages, %d consumers in the DLQ", info.State.Msgs, info.State.Consumers)
	}

	// replay one: back on its subject with its own headers, gone from the DLQ.
	r = run(w.env, "dlq", "replay", "--seq", "3")
	if r.code != 0 || r.stdout != fmt.Sprintf("replayed 3 warm -> %s (%s seq 2)\n", warm, w.names.Stream(stream.Warm)) {
		t.Fatalf("replay --seq 3: %+v", r)
	}
	m := w.lastOn(t, stream.Warm, warm)
	if m.Sequence != 2 || string(m.Data) != d.Body || m.Header.Get("X-Trace") != "trace-3" ||
		m.Header.Get(jetstream.MsgIDHeader) != "replay-dlqt_dlq-3" {
		t.Fatalf("replayed message: seq %d %s %v", m.Sequence, m.Data, m.Header)
	}
	// It names the message it stands for (the filter reruns it under that sequence), and
	// carries no other Drain-* header of the dead letter.
	if m.Header.Get(stream.HeaderReplayStream) != w.names.Stream(stream.Warm) || m.Header.Get(stream.HeaderReplaySequence) != "1" {
		t.Fatalf("replayed message: Drain-Replay-* headers %v", m.Header)
	}
	for k := range m.Header {
		if strings.HasPrefix(k, "Drain-") && k != stream.HeaderReplayStream && k != stream.HeaderReplaySequence {
			t.Fatalf("replayed message kept %s", k)
		}
	}
	if info := w.stream(t, stream.DLQ); info.State.Msgs != 2 {
		t.Fatalf("DLQ holds %d after replaying one", info.State.Msgs)
	}
	if got := run(w.env, "dlq", "replay", "--seq", "3"); got.code != 1 || !strings.Contains(got.stderr, "no dead letter with sequence 3") {
		t.Fatalf("replay of a replayed one: %+v", got)
	}

	// replay the rest (--json), then again: nothing left, nothing published twice.
	var replayed []Replayed
	r = run(w.env, "--json", "dlq", "replay")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &replayed) != nil || len(replayed) != 2 {
		t.Fatalf("replay --json: %+v", r)
	}
	if replayed[0].Seq != 1 || replayed[1].Seq != 2 || replayed[1].StreamSeq != 4 || replayed[1].Stream != w.names.Stream(stream.Events) {
		t.Fatalf("replayed: %+v", replayed)
	}
	if m := w.lastOn(t, stream.Events, orders); m.Header.Get("X-Trace") != "trace-2" || !strings.Contains(string(m.Data), `"t":2`) ||
		m.Header.Get(stream.HeaderReplaySequence) != "2" {
		t.Fatalf("last on %s: %s %v", orders, m.Data, m.Header)
	}
	if info := w.stream(t, stream.DLQ); info.State.Msgs != 0 {
		t.Fatalf("DLQ holds %d after replay", info.State.Msgs)
	}
	if r := run(w.env, "dlq", "replay"); r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "nothing to replay") {
		t.Fatalf("second replay: %+v", r)
	}
	if r := run(w.env, "dlq", "list", "--json"); r.stdout != "[]\n" {
		t.Fatalf("empty list --json: %+v", r)
	}
	if info := w.stream(t, stream.Events); info.State.Msgs != 4 {
		t.Fatalf("events stream holds %d messages, want 2 originals + 2 replays", info.State.Msgs)
	}
}

// A replay whose delete did not happen (or two operators replaying at once) stores the message
// once: the replay's Nats-Msg-Id names the dead letter.
func TestDLQReplayTwiceStoresOnce(t *testing.T) {
	w := newDLQWorld(t)
	orders := w.names.Subject(stream.Events, "orders")
	w.publish(t, orders, `[{"topic":"orders","type":"delete","url":"https://o.example.com/1","t":1}]`, "t")
	w.deadLetter(t, stream.Events, "filter", true, 20, 1)
	// The first replay's publish, as if drainctl had died before deleting the dead letter.
	m := nats.NewMsg(orders)
	m.Data = []byte(`[{"topic":"orders","type":"delete","url":"https://o.example.com/1","t":1}]`)
	if _, err := w.js.PublishMsg(ctx, m, jetstream.WithMsgID("replay-dlqt_dlq-1")); err != nil {
		t.Fatal(err)
	}
	r := run(w.env, "dlq", "replay")
	if r.code != 0 || !strings.Contains(r.stdout, "replayed 1 filter") || !strings.Contains(r.stdout, "already stored by an earlier replay") {
		t.Fatalf("replay: %+v", r)
	}
	if n := w.stream(t, stream.Events).State.Msgs; n != 2 {
		t.Fatalf("events stream holds %d, want the original and one replay", n)
	}
	if n := w.stream(t, stream.DLQ).State.Msgs; n != 0 {
		t.Fatalf("DLQ holds %d", n)
	}
}

// A dead letter that cannot be republished stays in the DLQ; the others are replayed.
func TestDLQReplayKeepsFailures(t *testing.T) {
	w := newDLQWorld(t)
	dlqSubject := w.names.Subject(stream.DLQ, "myapp")
	for _, orig := range []string{"nowhere.orders", w.names.Subject(stream.Siphon, "payments")} {
		m := nats.NewMsg(dlqSubject)
		m.Data = []byte(`[]`)
		m.Header.Set(stream.HeaderOrigSubject, orig)
		m.Header.Set(stream.HeaderStage, "myapp")
		m.Header.Set(stream.HeaderError, "boom")
		if _, err := w.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	r := run(w.env, "dlq", "replay", "--stage", "myapp")
	if r.code != 1 || !strings.Contains(r.stdout, "replayed 2 myapp -> "+dlqPrefix+".siphon.payments") ||
		!strings.Contains(r.stderr, "1 not replayed, it stays in the DLQ: publish to nowhere.orders") ||
		!strings.Contains(r.stderr, "1 of 2 dead letters not replayed") {
		t.Fatalf("replay: %+v", r)
	}
	if got := run(w.env, "dlq", "list"); !strings.HasPrefix(got.stdout, "1 ") || strings.Count(got.stdout, "\n") != 1 {
		t.Fatalf("list after a failed replay: %+v", got)
	}
	if got := run(w.env, "dlq", "replay", "--stage", "filter"); got.code != 0 || got.stdout != "" {
		t.Fatalf("replay of another stage: %+v", got)
	}
}

func TestDLQUsage(t *testing.T) {
	defer func(d time.Duration) { natsConnectTimeout = d }(natsConnectTimeout)
	natsConnectTimeout = 300 * time.Millisecond
	w := &dlqWorld{env: []string{"NATS_URL=nats://127.0.0.1:1"}}
	for _, bad := range [][]string{{"dlq"}, {"dlq", "drop"}, {"dlq", "purge", "--limit", "1"}, {"dlq", "purge", "--yes=maybe"}, {"dlq", "list", "--seq", "1"}, {"dlq", "replay", "--limit", "1"},
		{"dlq", "list", "--stage", "a.>"}, {"dlq", "list", "extra"}, {"dlq", "list", "--limit", "-1"}} {
		if r := run(w.env, bad...); r.code != 2 || !strings.Contains(r.stderr, "Usage: drainctl dlq") {
			t.Fatalf("%v: %+v", bad, r)
		}
	}
	if r := run(w.env, "dlq", "list", "-h"); r.code != 0 || !strings.Contains(r.stderr, "-limit") {
		t.Fatalf("dlq list -h: %+v", r)
	}
	r := run([]string{"NATS_URL=nats://user:secret@127.0.0.1:1"}, "dlq", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach NATS at nats://***@127.0.0.1:1 (NATS_URL) within 300ms") || strings.Contains(r.stderr, "secret") {
		t.Fatalf("NATS down: %+v", r)
	}
}

// A dead letter of a replay is replayed under the first message's stream and sequence, not
// under the replay's own.
func TestDLQReplayOfAReplayKeepsTheOrigin(t *testing.T) {
	w := newDLQWorld(t)
	orders := w.names.Subject(stream.Events, "orders")
	m := nats.NewMsg(w.names.Subject(stream.DLQ, "filter"))
	m.Data = []byte(`[{"topic":"orders","type":"update","url":"https://o.example.com/1","t":1}]`)
	m.Header.Set(stream.HeaderOrigSubject, orders)
	m.Header.Set(stream.HeaderOrigStream, w.names.Stream(stream.Events))
	m.Header.Set(stream.HeaderOrigSequence, "9")
	m.Header.Set(stream.HeaderReplayStream, w.names.Stream(stream.Events))
	m.Header.Set(stream.HeaderReplaySequence, "5")
	if _, err := w.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	if r := run(w.env, "dlq", "replay"); r.code != 0 {
		t.Fatalf("replay: %+v", r)
	}
	got := w.lastOn(t, stream.Events, orders)
	if got.Header.Get(stream.HeaderReplayStream) != w.names.Stream(stream.Events) || got.Header.Get(stream.HeaderReplaySequence) != "5" ||
		got.Header.Get(stream.HeaderOrigSequence) != "" {
		t.Fatalf("replay of a replay: headers %v", got.Header)
	}
}

// purge without --yes deletes nothing and exits 1; with it, it deletes the selection.
func TestDLQPurge(t *testing.T) {
	w := newDLQWorld(t)
	for _, stage := range []string{"filter", "warm", "warm"} {
		m := nats.NewMsg(w.names.Subject(stream.DLQ, stage))
		m.Data = []byte(`[]`)
		m.Header.Set(stream.HeaderOrigSubject, w.names.Subject(stream.Events, "orders"))
		if _, err := w.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if r := run(w.env, "dlq", "purge", "--stage", "warm"); r.code != 1 ||
		!strings.Contains(r.stderr, "2 dead letters would be purged from dlqt_dlq; nothing deleted without --yes") {
		t.Fatalf("purge without --yes: %+v", r)
	}
	if n := w.stream(t, stream.DLQ).State.Msgs; n != 3 {
		t.Fatalf("DLQ holds %d after a purge without --yes", n)
	}
	if r := run(w.env, "dlq", "purge", "--stage", "warm", "--yes"); r.code != 0 || r.stdout != "purged 2\n" {
		t.Fatalf("purge --stage warm --yes: %+v", r)
	}
	if r := run(w.env, "dlq", "purge", "--seq", "2", "--yes"); r.code != 1 || !strings.Contains(r.stderr, "no dead letter with sequence 2") {
		t.Fatalf("purge of a purged sequence: %+v", r)
	}
	if r := run(w.env, "--json", "dlq", "purge", "--seq", "1", "--yes"); r.code != 0 || r.stdout != "{\"purged\":1}\n" {
		t.Fatalf("purge --seq 1 --json: %+v", r)
	}
	if n := w.stream(t, stream.DLQ).State.Msgs; n != 0 {
		t.Fatalf("DLQ holds %d after purging everything", n)
	}
}
