package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Result is the outcome of one check.
type Result struct {
	Name   string
	OK     bool
	Detail string
}

// Report is every check's result.
type Report struct {
	Results []Result
}

// OK reports whether every check passed.
func (r Report) OK() bool {
	for _, c := range r.Results {
		if !c.OK {
			return false
		}
	}
	return len(r.Results) > 0
}

// String prints one line per check.
func (r Report) String() string {
	var b strings.Builder
	for _, c := range r.Results {
		mark := "PASS"
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s  %-34s %s\n", mark, c.Name, c.Detail)
	}
	return b.String()
}

func (r *Report) add(name string, ok bool, format string, args ...any) {
	r.Results = append(r.Results, Result{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

// Target is where Verify looks: the drain's Redis (state, dirty map and cache in one DB here)
// and JetStream.
type Target struct {
	Redis     redis.UniversalClient
	Namespace string
	JS        jetstream.JetStream
	Names     stream.Names
	Origin    *Origin
	NoCache   bool // the drain ran without a cache (DRAIN_CACHE_MODE=off): skip the cache check
	// Interruptions lists what may have stopped a filter between its reorder script and the
	// acknowledgement of its publishes during the run (filter SIGKILLs, NATS or Redis
	// restarts). Empty: the tight hand-off bound applies (see verifySwept).
	Interruptions []string
}

// Verify checks the drain against plan after the bus delivered it.
func Verify(ctx context.Context, plan *Plan, bus BusStats, t Target) Report {
	var r Report
	r.add("every batch acknowledged (2xx)", bus.Acked == bus.Batches, "%d/%d batches, %d POSTs for them", bus.Acked, bus.Batches, bus.Attempts)
	verifyState(ctx, &r, plan, t)
	changed := verifyChanged(ctx, &r, plan, t)
	verifySwept(ctx, &r, plan, changed, t)
	if !t.NoCache {
		verifyCache(ctx, &r, plan, t)
	}
	verifyDeadLetters(ctx, &r, t)
	verifyConsumers(ctx, &r, t)
	return r
}

func verifyState(ctx context.Context, r *Report, plan *Plan, t Target) {
	var bad []string
	urls := sortedURLs(plan)
	for i := 0; i < len(urls); i += 500 {
		chunk := urls[i:min(i+500, len(urls))]
		keys := make([]string, len(chunk))
		for j, u := range chunk {
			keys[j] = reorder.StateKey(t.Namespace, u)
		}
		// One GET per key, pipelined: a Redis Cluster spreads the keys over its masters.
		gets := make([]*redis.StringCmd, len(keys))
		_, err := t.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, k := range keys {
				gets[j] = p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			r.add("filter state = newest t per URL", false, "read state: %v", err)
			return
		}
		for j, g := range gets {
			want := plan.Expect[chunk[j]].MaxT
			s := g.Val()
			st, err := reorder.ParseState(s)
			if s == "" || err != nil || st.T != want {
				bad = append(bad, fmt.Sprintf("%s: state %q, want t=%d", chunk[j], s, want))
			}
		}
	}
	r.add("filter state = newest t per URL", len(bad) == 0, "%d URLs checked, %d wrong%s", len(urls), len(bad), sample(bad))
}

// verifyChanged reads <prefix>.changed: the events the filter found fresh. The newest event
// of every URL must be among them. It returns, per URL, how many fresh non-noop events it
// had: each can dirty the URL at most once, and a URL with one must have been handed on.
func verifyChanged(ctx context.Context, r *Report, plan *Plan, t Target) map[string]int {
	newest := map[string]int64{}
	dirtied := map[string]int{}
	n, err := readStream(ctx, t.JS, t.Names.Stream(stream.Changed), func(data []byte) error {
		var evs []Event
		if err := json.Unmarshal(data, &evs); err != nil {
			return err
		}
		for _, e := range evs {
			newest[e.URL] = max(newest[e.URL], e.T)
			if e.Type != "noop" {
				dirtied[e.URL]++
			}
		}
		return nil
	})
	if err != nil {
		r.add("newest event of each URL found fresh", false, "read changed stream: %v", err)
		return dirtied
	}
	var bad []string
	for _, u := range sortedURLs(plan) {
		if newest[u] != plan.Expect[u].MaxT {
			bad = append(bad, fmt.Sprintf("%s: newest fresh t=%d, want %d", u, newest[u], plan.Expect[u].MaxT))
		}
	}
	r.add("newest event of each URL found fresh", len(bad) == 0, "%d messages on the changed stream, %d URLs wrong%s", n, len(bad), sample(bad))
	return dirtied
}

// verifySwept checks that every dirtied URL was handed on, and that no URL was handed on more
// often than it was dirtied. What the check proves:
//
//   - The plan bound, always: a URL is dirtied at most once per distinct non-noop event, so a
//     URL stored on <prefix>.swept more often than the plan gave it non-noop events was handed
//     on twice for one dirtying (a failure).
//   - The tight bound, when nothing interrupted a filter (Target.Interruptions empty): every
//     dirtying then comes from an event the filter also published as fresh on the changed
//     stream, so a URL stored on <prefix>.swept more often than it has fresh non-noop events
//     there was handed on twice for one dirtying (a failure). It catches a duplicate hand-off
//     whenever the URL had fewer fresh events than non-noop ones, which the plan bound misses.
//   - When a filter may have been interrupted, the tight bound can be exceeded legitimately: the
//     script marked the URL dirty for an event, the filter stopped before its publishes were
//     acknowledged, a sweeper handed the URL on, and a newer event superseded the redelivered
//     one, which is then stale and never published. Those URLs are reported ("above their fresh
//     events") and only the plan bound fails the check.
//
// It does not prove the order of hand-offs and fresh events (two hand-offs separated by a
// fresh event of another URL count the same).
func verifySwept(ctx context.Context, r *Report, plan *Plan, dirtied map[string]int, t Target) {
	swept := map[string]int{}
	n, err := readStream(ctx, t.JS, t.Names.Stream(stream.Swept), func(data []byte) error {
		var urls []string
		if err := json.Unmarshal(data, &urls); err != nil {
			return err
		}
		for _, u := range urls {
			swept[u]++
		}
		return nil
	})
	if err != nil {
		r.add("every dirtied URL handed on", false, "read swept stream: %v", err)
		return
	}
	var missing []string
	for u := range dirtied {
		if swept[u] == 0 {
			missing = append(missing, u)
		}
	}
	sort.Strings(missing)
	h := judgeHandoffs(plan, dirtied, swept, len(t.Interruptions) > 0)
	bound := "fresh non-noop events on the changed stream (nothing interrupted a filter)"
	if len(t.Interruptions) > 0 {
		bound = "non-noop events of the plan (" + strings.Join(t.Interruptions, ", ") + " may have interrupted a filter)"
	}
	r.add("no URL handed on twice per dirtying", len(h.twice) == 0, "%d hand-offs of %d URLs, bound: %s; %d URLs above it%s; %d above their fresh non-noop events on the changed stream%s",
		h.handoffs, len(swept), bound, len(h.twice), sample(h.twice), len(h.above), sample(h.above))
	m, err := dirty.New(t.Redis, dirty.Options{Namespace: t.Namespace})
	if err != nil {
		r.add("every dirtied URL handed on", false, "dirty map: %v", err)
		return
	}
	left, err1 := m.Count(ctx)
	leased, err2 := m.Leased(ctx)
	if err := errors.Join(err1, err2); err != nil {
		r.add("every dirtied URL handed on", false, "read dirty map: %v", err)
		return
	}
	r.add("every dirtied URL handed on", len(missing) == 0 && left == 0 && leased == 0,
		"%d URLs dirtied, %d swept in %d messages, %d never swept, %d still dirty (leased ones included), %d leased%s",
		len(dirtied), len(swept), n, len(missing), left, leased, sample(missing))
}

// FilterInterruptions lists what in a run may have stopped a filter between its reorder script
// and its publishes (Target.Interruptions): its filter SIGKILLs and its NATS and Redis
// restarts (a publish or a cache bump that fails after the script ran is retried, like a
// crash).
func FilterInterruptions(s *Summary) []string {
	var out []string
	if n := s.Kills["filter"]; n > 0 {
		out = append(out, fmt.Sprintf("%d filter SIGKILLs", n))
	}
	if s.NATS > 0 {
		out = append(out, fmt.Sprintf("%d NATS faults", s.NATS))
	}
	if s.Redis > 0 {
		out = append(out, fmt.Sprintf("%d Redis faults", s.Redis))
	}
	return out
}

// handoffs is judgeHandoffs's verdict.
type handoffs struct {
	handoffs int      // messages' URLs on the swept stream, in all
	twice    []string // URLs handed on more often than the bound in force: failures
	above    []string // URLs handed on more often than their fresh non-noop events
}

// judgeHandoffs compares each URL's hand-offs (swept) with its fresh non-noop events on the
// changed stream (dirtied) and with the plan's non-noop events; see verifySwept. interrupted
// says a filter may have stopped between a script and its publishes: then only the plan bound
// fails.
func judgeHandoffs(plan *Plan, dirtied, swept map[string]int, interrupted bool) handoffs {
	var h handoffs
	for u, n := range swept {
		h.handoffs += n
		if n > dirtied[u] {
			h.above = append(h.above, fmt.Sprintf("%s: handed on %d times for %d fresh non-noop events", u, n, dirtied[u]))
		}
		switch {
		case n > plan.Expect[u].NonNoop:
			h.twice = append(h.twice, fmt.Sprintf("%s: handed on %d times for at most %d dirtyings", u, n, plan.Expect[u].NonNoop))
		case n > dirtied[u] && !interrupted:
			h.twice = append(h.twice, fmt.Sprintf("%s: handed on %d times for %d fresh non-noop events", u, n, dirtied[u]))
		}
	}
	sort.Strings(h.twice)
	sort.Strings(h.above)
	return h
}

func verifyCache(ctx context.Context, r *Report, plan *Plan, t Target) {
	c, err := cache.New(t.Redis, cache.Options{Namespace: t.Namespace})
	if err != nil {
		r.add("cache = origin for every URL", false, "%v", err)
		return
	}
	var bad []string
	live, gone, noopNewest := 0, 0, 0
	for _, u := range sortedURLs(plan) {
		e := plan.Expect[u]
		entry, err := c.Peek(ctx, u, cache.Variant{})
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", u, err))
			continue
		}
		if e.Newest == "noop" {
			// The newest event changed nothing; the cache must still match the origin, which
			// the last create/update/delete (fresh, or stale and so a refresh) brought in.
			noopNewest++
		}
		switch {
		case e.Deleted:
			gone++
			if entry.Fresh() {
				bad = append(bad, fmt.Sprintf("%s: deleted but cached %s", u, entry.Stored.Body))
			}
		default:
			live++
			want := Representation(u, e.Version)
			if t.Origin != nil {
				want = t.Origin.Body(u)
			}
			switch {
			case !entry.Fresh():
				bad = append(bad, fmt.Sprintf("%s: no fresh entry (index %d), want version %d", u, entry.Current, e.Version))
			case !bytes.Equal(entry.Stored.Body, want):
				bad = append(bad, fmt.Sprintf("%s: cached %s, want %s", u, entry.Stored.Body, want))
			}
		}
	}
	r.add("cache = origin for every URL", len(bad) == 0, "%d live URLs hold the origin's current version, %d deleted absent (%d URLs' newest event a noop), %d wrong%s",
		live, gone, noopNewest, len(bad), sample(bad))
}

func verifyDeadLetters(ctx context.Context, r *Report, t Target) {
	s, err := t.JS.Stream(ctx, t.Names.Stream(stream.DLQ))
	if err != nil {
		r.add("no dead letters", false, "%v", err)
		return
	}
	info, err := s.Info(ctx)
	if err != nil {
		r.add("no dead letters", false, "%v", err)
		return
	}
	r.add("no dead letters", info.State.Msgs == 0, "%d messages on %s", info.State.Msgs, info.Config.Name)
}

func verifyConsumers(ctx context.Context, r *Report, t Target) {
	var busy []string
	count := 0
	for _, k := range stream.Kinds {
		s, err := t.JS.Stream(ctx, t.Names.Stream(k))
		if err != nil {
			busy = append(busy, fmt.Sprintf("%s: %v", t.Names.Stream(k), err))
			continue
		}
		lister := s.ListConsumers(ctx)
		for ci := range lister.Info() {
			if ci.Config.Durable == "" {
				continue // an ordered reader such as Verify's own
			}
			count++
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				busy = append(busy, fmt.Sprintf("%s/%s: %d pending, %d unacked", ci.Stream, ci.Name, ci.NumPending, ci.NumAckPending))
			}
		}
		if err := lister.Err(); err != nil {
			busy = append(busy, fmt.Sprintf("%s: %v", t.Names.Stream(k), err))
		}
	}
	r.add("no consumer with pending messages", len(busy) == 0 && count > 0, "%d durable consumers, %d with a backlog%s", count, len(busy), sample(busy))
}

// readStream calls fn with the body of every message stored on the named stream and returns
// how many there were.
func readStream(ctx context.Context, js jetstream.JetStream, name string, fn func([]byte) error) (int, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	n := 0
	for uint64(n) < info.State.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2e9))
		if err != nil {
			return n, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			n++
			if err := fn(m.Data()); err != nil {
				return n, fmt.Errorf("message %d: %w", n, err)
			}
		}
		if err := batch.Error(); err != nil {
			return n, err
		}
		if got == 0 {
			return n, fmt.Errorf("%s: read %d of %d messages", name, n, info.State.Msgs)
		}
	}
	return n, nil
}

func sortedURLs(p *Plan) []string {
	urls := make([]string, 0, len(p.Expect))
	for u := range p.Expect {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	return urls
}

func sample(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return "; e.g. " + strings.Join(items[:min(3, len(items))], "; ")
}
