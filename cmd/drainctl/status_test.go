package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/cmd/drainctl/internal/status"
)

func TestStatus(t *testing.T) {
	w := newWorld(t)
	r := run(w.env, "status", "--json")
	if r.code != 0 {
		t.Fatalf("status --json: %+v", r)
	}
	var st status.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	// The contract: dirty and dead_letters are numbers, consumers a list of {name, pending, ack_pending}.
	var raw map[string]any
	_ = json.Unmarshal([]byte(r.stdout), &raw)
	if _, ok := raw["dirty"].(float64); !ok {
		t.Fatalf("dirty is not a number: %v", raw["dirty"])
	}
	if _, ok := raw["dead_letters"].(float64); !ok {
		t.Fatalf("dead_letters is not a number: %v", raw["dead_letters"])
	}
	for _, c := range raw["consumers"].([]any) {
		m := c.(map[string]any)
		if _, ok := m["name"].(string); !ok || m["pending"] == nil || m["ack_pending"] == nil || m["rate"] != nil {
			t.Fatalf("consumer %v", m)
		}
	}

	if st.Prefix != worldPrefix || time.Since(st.Time) > time.Minute || st.Dirty != worldDirty || st.Leased != worldLeased ||
		st.DeadLetters != worldDeadFilter+worldDeadWarm {
		t.Fatalf("status: %+v", st)
	}
	want := []status.StageLetter{{Stage: "filter", Subject: "wld.dlq.filter", Count: worldDeadFilter}, {Stage: "warm", Subject: "wld.dlq.warm", Count: worldDeadWarm}}
	if fmt.Sprint(st.DeadLettersByStage) != fmt.Sprint(want) {
		t.Fatalf("dead letters by stage %+v", st.DeadLettersByStage)
	}
	if len(st.Consumers) != 2 {
		t.Fatalf("consumers %+v", st.Consumers)
	}
	f, wc := st.Consumers[0], st.Consumers[1]
	if f.Name != "wld_filter" || f.Stream != "wld_events" || f.Stage != "filter" || f.Pending != worldFilterPending ||
		f.AckPending != worldFilterAckPending || f.DeadLetters != worldDeadFilter || f.Delivered != worldFilterAckPending {
		t.Fatalf("filter consumer %+v", f)
	}
	if wc.Name != "wld_warm_routemaster" || wc.Stream != "wld_warm" || wc.Stage != "warm" || wc.Pending != worldWarmPending ||
		wc.AckPending != 0 || wc.DeadLetters != worldDeadWarm {
		t.Fatalf("warm consumer %+v", wc)
	}
	if len(st.Streams) != 6 || st.Streams[0].Name != "wld_events" || st.Streams[0].Messages != 7 || st.Streams[0].Bytes == 0 ||
		st.Streams[5].Name != "wld_dlq" || st.Streams[5].Messages != 3 {
		t.Fatalf("streams %+v", st.Streams)
	}
	if len(st.Services) != 3 {
		t.Fatalf("services %+v", st.Services)
	}
	if s := st.Services[0]; s.Name != "warmer" || !s.Ready || s.Code != 200 || s.Body != `{"status":"ready"}` {
		t.Fatalf("warmer %+v", s)
	}
	if s := st.Services[1]; s.Name != "filter" || s.Ready || s.Code != 503 || !strings.Contains(s.Body, "nats: not connected") {
		t.Fatalf("filter %+v", s)
	}
	if s := st.Services[2]; s.Name != "sweeper" || s.Ready || s.Code != 0 || !strings.Contains(s.Error, "connection refused") {
		t.Fatalf("sweeper %+v", s)
	}

	// Plain text: one item a line, the same numbers.
	r = run(w.env, "status")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	for _, want := range []string{
		"stream wld_events messages=7 bytes=",
		"consumer wld_filter stream=wld_events stage=filter pending=5 ack_pending=2 redelivered=0 waiting=0 dead_letters=2",
		"consumer wld_warm_routemaster stream=wld_warm stage=warm pending=1 ack_pending=0 redelivered=0 waiting=0 dead_letters=1",
		"dead_letters 3", "dead_letters stage=filter 2", "dead_letters stage=warm 1", "dirty 3", "leased 1",
		`service warmer ready 200 {"status":"ready"}`, "service filter not-ready 503 ", "service sweeper unreachable ",
	} {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, want)
		}
		if !found {
			t.Errorf("status lacks a line %q:\n%s", want, r.stdout)
		}
	}
	if r.code != 0 || len(lines) != 6+2+3+2+3 {
		t.Fatalf("status: exit %d, %d lines:\n%s", r.code, len(lines), r.stdout)
	}
}

func TestStatusFailures(t *testing.T) {
	defer func(d time.Duration) { natsConnectTimeout = d }(natsConnectTimeout)
	natsConnectTimeout = 300 * time.Millisecond
	if r := run([]string{"NATS_URL=nats://127.0.0.1:1"}, "status"); r.code != 1 || !strings.Contains(r.stderr, "cannot reach NATS") {
		t.Fatalf("NATS down: %+v", r)
	}
	w := newWorld(t)
	env := append(w.env, "ROUTEMASTER_DRAIN_REDIS=redis://127.0.0.1:1/0")
	if r := run(env, "status", "--json"); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "dirty: count") {
		t.Fatalf("Redis down: %+v", r)
	}
	if r := run(w.env, "status", "extra"); r.code != 2 {
		t.Fatalf("status extra: %+v", r)
	}
}
