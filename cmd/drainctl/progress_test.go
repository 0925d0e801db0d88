package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// progressLines returns the stderr lines of a command's progress reports.
func progressLines(stderr, what string) []string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "drainctl "+what) {
			lines = append(lines, l)
		}
	}
	return lines
}

// dirty sweep of 2,500 URLs reports on stderr at 1,000, 2,000 and the final 2,500, while
// stdout holds only the URLs; a small sweep reports nothing.
func TestDirtySweepReportsProgress(t *testing.T) {
	defer func(d time.Duration) { progressInterval = d }(progressInterval)
	progressInterval = time.Hour // count-driven reports only, however slow the machine
	r := draintest.StartRedis(t)
	env := []string{"ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, "prog")}
	m, err := dirty.New(r.Client(t, 0), dirty.Options{Namespace: "prog"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2500 {
		if _, err := m.Mark(ctx, fmt.Sprintf("https://example.com/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := run(env, "dirty", "sweep", "--limit", "10")
	if got.code != 0 || len(progressLines(got.stderr, "dirty sweep")) != 0 {
		t.Fatalf("small sweep: %+v", got)
	}
	got = run(env, "dirty", "sweep")
	lines := progressLines(got.stderr, "dirty sweep")
	if got.code != 0 || strings.Count(got.stdout, "\n") != 2490 || len(lines) != 3 ||
		!strings.HasPrefix(lines[0], "drainctl dirty sweep: 1000 URLs swept (") ||
		!strings.HasPrefix(lines[1], "drainctl dirty sweep: 2000 URLs swept (") ||
		!strings.HasPrefix(lines[2], "drainctl dirty sweep: 2490 URLs swept (") {
		t.Fatalf("sweep: exit %d, %d lines on stdout, progress %q", got.code, strings.Count(got.stdout, "\n"), lines)
	}
}

// cache fix-ttl over 2,500 keys reports the keys scanned, ending with the total.
func TestCacheFixTTLReportsProgress(t *testing.T) {
	defer func(d time.Duration) { progressInterval = d }(progressInterval)
	progressInterval = time.Hour
	w := newCacheWorld(t)
	p := w.rdb.Pipeline()
	for i := range 2500 {
		p.HSet(ctx, cache.Key("ctl", fmt.Sprintf("https://x/%d", i)), "current_index", 1)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	got := run(w.env, "cache", "fix-ttl", "--batch", "250")
	lines := progressLines(got.stderr, "cache fix-ttl")
	if got.code != 0 || got.stdout != "scanned 2500\nfixed 2500\n" || len(lines) < 2 ||
		!strings.HasPrefix(lines[len(lines)-1], "drainctl cache fix-ttl: 2500 keys scanned (") {
		t.Fatalf("fix-ttl: %+v, progress %q", got, lines)
	}
}

// dlq replay reports the dead letters it handled (here every one, progressEvery being 1).
func TestDLQReplayReportsProgress(t *testing.T) {
	defer func(n int, d time.Duration) { progressEvery, progressInterval = n, d }(progressEvery, progressInterval)
	progressEvery, progressInterval = 1, time.Hour
	w := newDLQWorld(t)
	for i := range 3 {
		m := nats.NewMsg(w.names.Subject(stream.DLQ, "myapp"))
		m.Data = []byte(fmt.Sprintf(`[%d]`, i))
		m.Header.Set(stream.HeaderOrigSubject, w.names.Subject(stream.Siphon, "payments"))
		m.Header.Set(stream.HeaderStage, "myapp")
		m.Header.Set(stream.HeaderError, "boom")
		if _, err := w.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got := run(w.env, "dlq", "replay")
	lines := progressLines(got.stderr, "dlq replay")
	if got.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[2], "drainctl dlq replay: 3 dead letters handled (") {
		t.Fatalf("replay: %+v, progress %q", got, lines)
	}
}
