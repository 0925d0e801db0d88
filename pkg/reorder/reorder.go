package reorder

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/internal/scriptpipe"
)

//go:embed reorder.lua
var reorderLua string

// reorderScript runs the URLs of one bucket of a batch through the filter in one EVALSHA.
var reorderScript = redis.NewScript(reorderLua)

// Filter is the reordering filter: it drops every event that is not strictly newer than the
// newest event seen for its URL. Its state lives in Redis, so any number of Filters (in any
// number of processes) share it and may run concurrently. A Filter is safe for concurrent use.
type Filter struct {
	rdb redis.Scripter
	ns  string
	ttl time.Duration
}

// Result is what Run found in a batch.
type Result struct {
	// Fresh is the events handed on: one per URL, the newest of the batch, in the order each
	// URL was first kept. The events are the batch's own values (Raw included).
	Fresh []event.Event
	// NewlyDirty is the URLs of fresh non-noop events that this run added to the dirty set
	// (empty when marking is off or every such URL was already dirty).
	NewlyDirty []string
	// Stale is the number of events of the batch not in Fresh: older than or as old as the
	// stored state, or superseded by a newer event of the same URL in the batch.
	Stale int
}

// ErrInvalidBatch is returned (wrapped) for a batch the filter cannot process, such as an
// event without a URL. Such a batch is not worth retrying.
var ErrInvalidBatch = errors.New("reorder: invalid batch")

// New returns a Filter keeping its state in rdb with o (zero fields take the Default*
// values: the gem's namespace "rm" and a state TTL of 90 days). It fails when rdb is nil or o
// is invalid.
func New(rdb redis.Scripter, o Options) (*Filter, error) {
	if rdb == nil {
		return nil, errors.New("reorder: New needs a Redis client")
	}
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Filter{rdb: rdb, ns: o.Namespace, ttl: o.TTL}, nil
}

// StateKey returns the Redis key of url's state, <ns>:dirtymap:{<tag>}:state:<url>, in the
// bucket of url (dirty.Bucket) beside that bucket's dirty set, so one script updates both.
// The value is JSON, {"t":<ms>,"seq":<stream sequence of the message that wrote it>}.
func StateKey(ns, url string) string { return dirty.KeysOf(ns, url).State + url }

// State is the stored state of one URL: the newest event time seen for it and the stream
// sequence of the message that moved it there.
type State struct {
	T   int64  `json:"t"`   // newest event time seen, ms; 0 for a URL never seen
	Seq uint64 `json:"seq"` // stream sequence of the batch that wrote T
}

// ParseState parses a state value as the script reads it: a JSON object with a numeric "t"
// (and "seq"). Any other value (such as the gem's Ruby Marshal data) is an error; the script
// counts such a URL as never seen.
func ParseState(raw string) (State, error) {
	var v struct {
		T   json.Number `json:"t"`
		Seq json.Number `json:"seq"`
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return State{}, fmt.Errorf("state is not JSON {\"t\":..,\"seq\":..}, the filter counts the URL as never seen: %.80q", raw)
	}
	var st State
	if v.T != "" {
		f, err := v.T.Float64()
		if err != nil || f < 0 {
			return State{}, fmt.Errorf("state: t %q is not a non-negative number", v.T)
		}
		st.T = int64(f)
	}
	if v.Seq != "" {
		n, err := strconv.ParseUint(string(v.Seq), 10, 64)
		if err != nil {
			return State{}, fmt.Errorf("state: seq %q is not a stream sequence", v.Seq)
		}
		st.Seq = n
	}
	return st, nil
}

// ReadState returns the stored state of url in namespace ns: the zero State when there is
// none (the URL was never seen, or its state expired).
func ReadState(ctx context.Context, rdb redis.StringCmdable, ns, url string) (State, error) {
	raw, err := rdb.Get(ctx, StateKey(ns, url)).Result()
	if errors.Is(err, redis.Nil) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read state of %s: %w", url, err)
	}
	st, err := ParseState(raw)
	if err != nil {
		return State{}, fmt.Errorf("%s: %w", url, err)
	}
	return st, nil
}

// Load loads the script into Redis, so the first Run needs no fallback EVAL. Optional.
func (f *Filter) Load(ctx context.Context) error {
	return reorderScript.Load(ctx, f.rdb).Err()
}

// Run filters one batch, every URL atomically, in one Redis round trip (one per node on Redis
// Cluster, in parallel; two the first time a server sees the script), whatever the batch
// size. (A client that is only a redis.Scripter, without Pipeline, gets one round trip per
// bucket; every go-redis client has Pipeline.)
//
// The batch is split by bucket (dirty.Bucket): one script call per bucket present (at most
// dirty.Buckets), each touching only that bucket's keys (the states of its URLs and its dirty
// set, one hash slot), all sent in one pipeline. The results are merged back into one event per
// URL, the newest, in the order each URL was first kept across the whole batch.
//
// seq identifies the batch: the stream sequence of the message it came in. The state of every
// URL the batch advances records seq, and a later Run with the same seq (a redelivery of the
// same message, after a crash between Run and the hand-off) keeps again the events the first Run
// kept, as long as no other batch has moved those URLs on since; if one has, that batch carries
// the newer change. Distinct batches must use distinct seqs; seq 0 is a valid sequence but
// should be reserved for one-off batches. The same holds when Run failed with some buckets
// done and others not (a node down): running the batch again under the same seq replays the
// buckets that were done and filters the others.
//
// When markDirty is set, the URL of every fresh non-noop event (kept, or superseded by a newer
// noop of the batch) is added to its bucket's dirty set in the same script, except on a
// replay, whose first run already did. NewlyDirty lists the URLs that were not in the set
// before.
func (f *Filter) Run(ctx context.Context, seq uint64, events []event.Event, markDirty bool) (Result, error) {
	if len(events) == 0 {
		return Result{}, nil
	}
	mark := "0"
	if markDirty {
		mark = "1"
	}
	head := []any{strconv.FormatInt(f.ttl.Milliseconds(), 10), strconv.FormatUint(seq, 10), mark}
	var groups [dirty.Buckets]*bucketRun
	type url struct {
		g *bucketRun
		n int
	}
	urls := make(map[string]url, len(events))
	for i := range events {
		e := &events[i]
		if e.URL == "" {
			return Result{}, fmt.Errorf("%w: event %d has no url", ErrInvalidBatch, i)
		}
		if e.T < 0 {
			return Result{}, fmt.Errorf("%w: event %d has a negative t", ErrInvalidBatch, i)
		}
		u, ok := urls[e.URL]
		if !ok {
			b := dirty.Bucket(e.URL)
			if groups[b] == nil {
				groups[b] = newBucketRun(dirty.KeysFor(f.ns, b))
			}
			u.g = groups[b]
			u.g.keys = append(u.g.keys, u.g.state+e.URL)
			u.n = len(u.g.keys) - 1
			urls[e.URL] = u
		}
		t := strconv.FormatInt(e.T, 10)
		if e.Type == event.Noop {
			t = "n" + t
		}
		u.g.events = append(u.g.events, bucketEvent{pos: i, url: u.n, t: t})
	}
	var runs []*bucketRun
	var calls []scriptpipe.Call
	for _, g := range groups {
		if g != nil {
			runs = append(runs, g)
			calls = append(calls, scriptpipe.Call{Keys: g.keys, Args: g.args(head)})
		}
	}
	replies := scriptpipe.Run(ctx, f.rdb, reorderScript, calls)
	if err := scriptpipe.Err(replies); err != nil {
		return Result{}, fmt.Errorf("reorder: %w", err)
	}
	var kept []keptURL
	for i, r := range replies {
		var err error
		if kept, err = runs[i].parse(r, kept); err != nil {
			return Result{}, fmt.Errorf("reorder: %w", err)
		}
	}
	slices.SortFunc(kept, func(a, b keptURL) int { return a.first - b.first })
	res := Result{Fresh: make([]event.Event, len(kept))}
	for i, k := range kept {
		res.Fresh[i] = events[k.kept]
		if k.newlyDirty {
			res.NewlyDirty = append(res.NewlyDirty, events[k.kept].URL)
		}
	}
	res.Stale = len(events) - len(res.Fresh)
	return res, nil
}

// bucketRun is the script call of one bucket of a batch.
type bucketRun struct {
	state  string   // prefix of the bucket's state keys
	keys   []string // the dirty set, then the state key of each distinct URL
	events []bucketEvent
}

// bucketEvent is one event of a bucketRun.
type bucketEvent struct {
	pos int    // its position in the batch
	url int    // its URL number, the index of its state key in keys
	t   string // its t in decimal, prefixed "n" for a noop
}

func newBucketRun(k dirty.Keys) *bucketRun {
	return &bucketRun{state: k.State, keys: []string{k.Items}}
}

// args returns the script's arguments: head, the state key prefix length, then the events:
// their t alone when each URL has one event (the script's fast path), else URL number and t.
func (g *bucketRun) args(head []any) []any {
	one := len(g.events) == len(g.keys)-1
	n := len(g.events)
	if !one {
		n *= 2
	}
	args := append(make([]any, 0, len(head)+1+n), head...)
	args = append(args, len(g.state))
	for _, e := range g.events {
		if !one {
			args = append(args, e.url)
		}
		args = append(args, e.t)
	}
	return args
}

// keptURL is one URL's outcome: the batch positions of the event at which it was first kept
// and of the event kept, and whether the run made it newly dirty.
type keptURL struct {
	first, kept int
	newlyDirty  bool
}

// parse appends the URLs kept by the script's reply r (one character per event) to kept.
func (g *bucketRun) parse(r *redis.Cmd, kept []keptURL) ([]keptURL, error) {
	flags, err := r.Text()
	if err != nil || len(flags) != len(g.events) {
		return nil, fmt.Errorf("unexpected script reply %q (%v) for %d events", r.Val(), err, len(g.events))
	}
	var firstAt map[int]int // URL number -> batch position where it was first kept, for "l"
	for i, e := range g.events {
		switch c := flags[i]; c {
		case '0':
		case 'f':
			if firstAt == nil {
				firstAt = map[int]int{}
			}
			firstAt[e.url] = e.pos
		case 'k', 'K':
			kept = append(kept, keptURL{first: e.pos, kept: e.pos, newlyDirty: c == 'K'})
		case 'l', 'L':
			first, ok := firstAt[e.url]
			if !ok {
				return nil, fmt.Errorf("unexpected script reply %q: event %d kept, its first keep unknown", flags, i)
			}
			kept = append(kept, keptURL{first: first, kept: e.pos, newlyDirty: c == 'L'})
		default:
			return nil, fmt.Errorf("unexpected script reply %q", flags)
		}
	}
	return kept, nil
}
