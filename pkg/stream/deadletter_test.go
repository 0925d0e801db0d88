package stream_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Count, Purge by sequence, stage and all, and a replay that cannot republish (the dead
// letter stays), against a real server.
func TestDeadLettersCountPurgeAndFailedReplay(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "dl"}
	declare(t, js, n)
	ctx := context.Background()
	dead := func(stage, orig string) {
		t.Helper()
		m := nats.NewMsg(n.Subject(stream.DLQ, stage))
		m.Data = []byte(`[]`)
		m.Header.Set(stream.HeaderStage, stage)
		m.Header.Set(stream.HeaderError, "boom")
		if orig != "" {
			m.Header.Set(stream.HeaderOrigSubject, orig)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	dead("filter", n.Subject(stream.Events, "a")) // 1
	dead("warm", "nowhere.x")                     // 2: no stream on its subject
	dead("warm", "")                              // 3: no original subject
	dead("filter", n.Subject(stream.Events, "b")) // 4
	dead("filter", n.Subject(stream.Events, "c")) // 5

	d, err := stream.OpenDeadLetters(ctx, js, n)
	if err != nil {
		t.Fatal(err)
	}
	count := func(sel stream.Selection) uint64 {
		t.Helper()
		c, err := d.Count(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if all, filter, limited := count(stream.Selection{}), count(stream.Selection{Stage: "filter"}), count(stream.Selection{Limit: 2}); all != 5 || filter != 3 || limited != 2 {
		t.Fatalf("Count: all %d, filter %d, limit 2 %d", all, filter, limited)
	}

	// A dead letter that cannot be republished stays; the reason says why.
	var outcomes []stream.Replayed
	if err := d.Replay(ctx, stream.Selection{Stage: "warm"}, func(r stream.Replayed) error {
		outcomes = append(outcomes, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(outcomes) != 2 || outcomes[0].Err == nil || outcomes[0].Stream != "" || outcomes[1].Err == nil {
		t.Fatalf("replay of unreplayable dead letters: %+v", outcomes)
	}
	if c := count(stream.Selection{Stage: "warm"}); c != 2 {
		t.Fatalf("%d warm dead letters after failed replays, want 2", c)
	}

	// Purge one by sequence, then a stage, then the rest.
	if _, err := d.Purge(ctx, stream.Selection{Stage: "warm", Seq: 1}); !errors.Is(err, stream.ErrNoDeadLetter) {
		t.Fatalf("purge of a filter dead letter as warm: %v", err)
	}
	if _, err := d.Purge(ctx, stream.Selection{Limit: 1}); err == nil {
		t.Fatal("purge with a limit accepted")
	}
	if got, err := d.Purge(ctx, stream.Selection{Seq: 4}); err != nil || got != 1 {
		t.Fatalf("purge seq 4: %d, %v", got, err)
	}
	if got, err := d.Purge(ctx, stream.Selection{Stage: "filter"}); err != nil || got != 2 {
		t.Fatalf("purge stage filter: %d, %v", got, err)
	}
	left, err := d.List(ctx, stream.Selection{})
	if err != nil || len(left) != 2 || left[0].Seq != 2 || left[1].Seq != 3 {
		t.Fatalf("after purging filter: %+v, %v", left, err)
	}
	dead("warm", "nowhere.y") // 6
	if got, err := d.Purge(ctx, stream.Selection{}); err != nil || got != 3 {
		t.Fatalf("purge all: %d, %v", got, err)
	}
	if c := count(stream.Selection{}); c != 0 {
		t.Fatalf("%d dead letters after purging all", c)
	}
}

// CountByStage counts each stage's subject; Page walks the DLQ in bounded pages from any
// sequence, a stage's only.
func TestDeadLettersCountByStageAndPage(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "pg"}
	declare(t, js, n)
	ctx := context.Background()
	d, err := stream.OpenDeadLetters(ctx, js, n)
	if err != nil {
		t.Fatal(err)
	}
	if counts, err := d.CountByStage(ctx); err != nil || len(counts) != 0 {
		t.Fatalf("empty DLQ: %v %v", counts, err)
	}
	for i := range 7 {
		stage := "filter"
		if i%3 == 2 {
			stage = "warm"
		}
		if _, err := js.Publish(ctx, n.Subject(stream.DLQ, stage), []byte(`[]`)); err != nil {
			t.Fatal(err)
		}
	} // filter: 1 2 4 5 7, warm: 3 6
	counts, err := d.CountByStage(ctx)
	want := []stream.StageCount{{Stage: "filter", Subject: "pg.dlq.filter", Count: 5}, {Stage: "warm", Subject: "pg.dlq.warm", Count: 2}}
	if err != nil || !slices.Equal(counts, want) {
		t.Fatalf("CountByStage = %v, %v; want %v", counts, err, want)
	}

	seqs := func(ms []stream.DLQMsg) []uint64 {
		var out []uint64
		for _, m := range ms {
			out = append(out, m.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		sel      stream.Selection
		from     uint64
		want     []uint64
		wantNext uint64
	}{
		{stream.Selection{Limit: 3}, 0, []uint64{1, 2, 3}, 4},
		{stream.Selection{Limit: 3}, 4, []uint64{4, 5, 6}, 7},
		{stream.Selection{Limit: 3}, 7, []uint64{7}, 0},
		{stream.Selection{Limit: 2, Stage: "filter"}, 3, []uint64{4, 5}, 7},
		{stream.Selection{Stage: "warm"}, 0, []uint64{3, 6}, 0},
		{stream.Selection{Limit: 7}, 0, []uint64{1, 2, 3, 4, 5, 6, 7}, 0},
		{stream.Selection{}, 8, nil, 0},
	} {
		got, next, err := d.Page(ctx, tc.sel, tc.from)
		if err != nil || !slices.Equal(seqs(got), tc.want) || next != tc.wantNext {
			t.Fatalf("Page(%+v, %d) = %v next %d, %v; want %v next %d", tc.sel, tc.from, seqs(got), next, err, tc.want, tc.wantNext)
		}
	}
	if _, _, err := d.Page(ctx, stream.Selection{Seq: 1}, 0); err == nil {
		t.Fatal("Page with a Seq accepted")
	}
	// Page reads; it deletes nothing.
	if c, _ := d.Count(ctx, stream.Selection{}); c != 7 {
		t.Fatalf("count after paging: %d", c)
	}
}

// Work that never was a JetStream message is dead-lettered with DeadLetterData: read back
// like any dead letter, stored once per ID, and kept by a replay when it names no subject.
func TestDeadLetterData(t *testing.T) {
	srv := draintest.StartNATS(t)
	_, js := srv.Connect(t)
	n := stream.Names{Prefix: "dd"}
	declare(t, js, n)
	ctx := context.Background()
	h := nats.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Nats-Msg-Id", "dropped")
	l := stream.Letter{Data: []byte(`["https://a.test/1"]`), Header: h, ID: "https://a.test/1"}
	for range 2 {
		if err := stream.DeadLetterData(ctx, js, n.Subject(stream.DLQ, "sweep"), l, errors.New("webhook answered 422"), 20); err != nil {
			t.Fatal(err)
		}
	}
	d, err := stream.OpenDeadLetters(ctx, js, n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.List(ctx, stream.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d dead letters, want 1 (same ID twice)", len(got))
	}
	m := got[0]
	if m.Stage != "sweep" || m.Error != "webhook answered 422" || m.Deliveries != 20 || string(m.Data) != `["https://a.test/1"]` ||
		m.OrigSubject != "" || m.Header.Get("Content-Type") != "application/json" || m.DeadLetteredAt.IsZero() {
		t.Fatalf("dead letter %+v", m)
	}
	if r := d.ReplayMsg(ctx, m); r.Err == nil || r.Stream != "" {
		t.Fatalf("replay of a letter without a subject: %+v", r)
	}
	if c, _ := d.Count(ctx, stream.Selection{Stage: "sweep"}); c != 1 {
		t.Fatalf("%d sweep dead letters after the replay, want 1", c)
	}
}
