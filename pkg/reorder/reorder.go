package reorder

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/event"
)

//go:embed reorder.lua
var reorderLua string

// reorderScript runs a whole batch through the filter in one EVALSHA.
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

// StateKey returns the Redis key of url's state: {ns}:dirtymap:state:<url>. The value is JSON,
// {"t":<ms>,"seq":<stream sequence of the message that wrote it>}.
func StateKey(ns, url string) string { return "{" + ns + "}:dirtymap:state:" + url }

// DirtyKey returns the Redis key of the dirty set, {ns}:dirtymap:items: the dirty map's own
// key (dirty.KeysFor(ns).Items), so the filter marks the set the sweepers read.
func DirtyKey(ns string) string { return dirty.KeysFor(ns).Items }

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

// Run filters one batch atomically, in one Redis round trip (two the first time a Redis server
// sees the script), whatever the batch size.
//
// seq identifies the batch: the stream sequence of the message it came in. The state of every
// URL the batch advances records seq, and a later Run with the same seq (a redelivery of the
// same message, after a crash between Run and the hand-off) keeps again the events the first Run
// kept, as long as no other batch has moved those URLs on since; if one has, that batch carries
// the newer change. Distinct batches must use distinct seqs; seq 0 is a valid sequence but
// should be reserved for one-off batches.
//
// When markDirty is set, the URL of every fresh non-noop event (kept, or superseded by a newer
// noop of the batch) is added to the dirty set in the same script, except on a replay, whose
// first run already did. NewlyDirty lists the URLs that were not in the set before.
func (f *Filter) Run(ctx context.Context, seq uint64, events []event.Event, markDirty bool) (Result, error) {
	if len(events) == 0 {
		return Result{}, nil
	}
	keys := make([]string, 1, len(events)+1)
	keys[0] = DirtyKey(f.ns)
	args := make([]any, 3, 3+2*len(events))
	args[0] = strconv.FormatInt(f.ttl.Milliseconds(), 10)
	args[1] = strconv.FormatUint(seq, 10)
	args[2] = "0"
	if markDirty {
		args[2] = "1"
	}
	urlNum := make(map[string]int, len(events))
	for i := range events {
		e := &events[i]
		if e.URL == "" {
			return Result{}, fmt.Errorf("%w: event %d has no url", ErrInvalidBatch, i)
		}
		if e.T < 0 {
			return Result{}, fmt.Errorf("%w: event %d has a negative t", ErrInvalidBatch, i)
		}
		n, ok := urlNum[e.URL]
		if !ok {
			keys = append(keys, StateKey(f.ns, e.URL))
			n = len(keys) - 1
			urlNum[e.URL] = n
		}
		if e.Type == event.Noop {
			n = -n
		}
		args = append(args, n, e.T)
	}
	raw, err := reorderScript.Run(ctx, f.rdb, keys, args...).Slice()
	if err != nil {
		return Result{}, fmt.Errorf("reorder: %w", err)
	}
	if len(raw) != 2 {
		return Result{}, fmt.Errorf("reorder: unexpected script reply %v", raw)
	}
	fresh, _ := raw[0].([]any)
	dirty, _ := raw[1].([]any)
	res := Result{Fresh: make([]event.Event, 0, len(fresh))}
	for _, v := range fresh {
		i, ok := v.(int64)
		if !ok || i < 1 || int(i) > len(events) {
			return Result{}, fmt.Errorf("reorder: unexpected event position %v", v)
		}
		res.Fresh = append(res.Fresh, events[i-1])
	}
	if len(dirty) > 0 {
		res.NewlyDirty = make([]string, 0, len(dirty))
		for _, v := range dirty {
			n, ok := v.(int64)
			if !ok || n < 1 || int(n) >= len(keys) {
				return Result{}, fmt.Errorf("reorder: unexpected url number %v", v)
			}
			res.NewlyDirty = append(res.NewlyDirty, keys[n][len(StateKey(f.ns, "")):])
		}
	}
	res.Stale = len(events) - len(res.Fresh)
	return res, nil
}
