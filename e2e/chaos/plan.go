package chaos

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// Topics are the topics the simulated publishers use; each URL belongs to one.
var Topics = []string{"widgets", "gadgets", "orders", "people"}

// Event is one event as the bus delivers it. Gen is its position in publication order (not
// sent): the origin has applied every change up to Gen before the event is delivered.
type Event struct {
	Topic string         `json:"topic"`
	Type  string         `json:"type"`
	URL   string         `json:"url"`
	T     int64          `json:"t"`
	Data  map[string]int `json:"data,omitempty"`
	Gen   int            `json:"-"`
}

// Batch is one POST body, built once so every retry sends the same bytes.
type Batch struct {
	Body   []byte
	Events int
	MaxGen int // the newest change this batch announces
}

// Change is what a publication did to the origin's copy of a URL.
type Change struct {
	URL     string
	Version int  // representation version after the change (0 for a delete)
	Deleted bool // the resource is gone (404)
	Noop    bool // nothing changed
}

// Expect is what the drain must show for one URL at quiescence.
type Expect struct {
	MaxT    int64  // newest t of any event for the URL: the filter state
	Newest  string // type of that event
	Version int    // origin's current version (0 when deleted)
	Deleted bool
	Dirtied bool // some event was fresh and not a noop: the URL must be handed on
	NonNoop int  // distinct create/update/delete events: the most dirtyings the URL can have
}

// Plan is a generated bus history: the changes in publication order, the batches in delivery
// order (shuffled locally, with duplicates), and what must hold at the end.
type Plan struct {
	Base    string
	URLs    []string
	Changes []Change
	Batches []Batch
	Expect  map[string]Expect
	Events  int // events delivered, duplicates included
	Dups    int
}

// NewPlan generates a history of events events (duplicates included, about 3%) over urls
// URLs on the origin at base, deterministic for seed. Each URL starts with a create; later
// events are updates (70%), deletes (10%, followed by a create) and noops (10%). Timestamps
// increase per URL in publication order, so the local shuffle of the delivery order makes
// them arrive out of order.
func NewPlan(seed uint64, events, urls int, base string) *Plan {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := &Plan{Base: base, Expect: make(map[string]Expect, urls)}
	for i := range urls {
		topic := Topics[i%len(Topics)]
		p.URLs = append(p.URLs, fmt.Sprintf("%s/%s/%d", base, topic, i))
	}
	type urlState struct {
		t       int64
		version int
		exists  bool
	}
	state := make([]urlState, urls)
	gen := events * 100 / 103
	if gen < 1 {
		gen = min(events, 1)
	}
	stream := make([]Event, 0, events)
	for g := range gen {
		i := rng.IntN(urls)
		u, st := p.URLs[i], &state[i]
		var typ string
		switch r := rng.IntN(10); {
		case !st.exists:
			typ = "create"
		case r < 7:
			typ = "update"
		case r < 8:
			typ = "delete"
		default:
			typ = "noop"
		}
		if st.t == 0 {
			st.t = 1_700_000_000_000 + int64(rng.IntN(100_000))
		}
		st.t += 1 + int64(rng.IntN(50))
		ch := Change{URL: u}
		switch typ {
		case "create", "update":
			st.version++
			st.exists = true
			ch.Version = st.version
		case "delete":
			st.exists = false
			ch.Deleted = true
		case "noop":
			ch.Noop = true
		}
		p.Changes = append(p.Changes, ch)
		ev := Event{Topic: Topics[i%len(Topics)], Type: typ, URL: u, T: st.t, Gen: g}
		if rng.IntN(4) == 0 {
			ev.Data = map[string]int{"v": st.version}
		}
		stream = append(stream, ev)

		e := p.Expect[u]
		e.MaxT, e.Newest = st.t, typ
		if typ != "noop" {
			e.Version, e.Deleted = st.version, !st.exists
			if !st.exists {
				e.Version = 0
			}
			e.Dirtied = true
			e.NonNoop++
		}
		p.Expect[u] = e
	}
	// Duplicates: re-deliver random earlier events later on (a publisher sending twice).
	for range events - gen {
		src := stream[rng.IntN(len(stream))]
		stream = append(stream, src)
		p.Dups++
	}
	// Local shuffle: each event moves up to 300 places, so neighbours arrive out of order.
	for i := range stream {
		j := i + rng.IntN(min(300, len(stream)-i))
		stream[i], stream[j] = stream[j], stream[i]
	}
	for len(stream) > 0 {
		n := min(1+rng.IntN(100), len(stream))
		b := Batch{Events: n}
		for _, ev := range stream[:n] {
			b.MaxGen = max(b.MaxGen, ev.Gen)
		}
		var err error
		if b.Body, err = json.Marshal(stream[:n]); err != nil {
			panic(err) // only plain strings and numbers: cannot fail
		}
		p.Batches = append(p.Batches, b)
		p.Events += n
		stream = stream[n:]
	}
	return p
}
