package chaos

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/routemaster-drain/drain/pkg/event"
)

func TestPlan(t *testing.T) {
	p := NewPlan(42, 10000, 400, "http://origin.test")
	if p.Events != 10000 {
		t.Fatalf("delivered %d events, want 10000", p.Events)
	}
	if p.Dups == 0 {
		t.Fatalf("no duplicates in the plan")
	}
	again := NewPlan(42, 10000, 400, "http://origin.test")
	if len(again.Batches) != len(p.Batches) || !bytes.Equal(again.Batches[7].Body, p.Batches[7].Body) {
		t.Fatalf("the same seed gave a different plan")
	}

	maxT := map[string]int64{}
	outOfOrder, types := 0, map[string]int{}
	for i, b := range p.Batches {
		// The drain's own parser must accept every batch the bus sends.
		evs, err := event.Parse(b.Body)
		if err != nil {
			t.Fatalf("batch %d does not parse: %v", i, err)
		}
		if len(evs) == 0 || len(evs) > 100 || len(evs) != b.Events {
			t.Fatalf("batch %d has %d events (Events %d), want 1..100", i, len(evs), b.Events)
		}
		var raw []Event
		if err := json.Unmarshal(b.Body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, e := range raw {
			types[e.Type]++
			if e.T < maxT[e.URL] {
				outOfOrder++
			}
			maxT[e.URL] = max(maxT[e.URL], e.T)
		}
	}
	if outOfOrder == 0 {
		t.Errorf("no event arrives after a newer one for its URL")
	}
	for _, typ := range []string{"create", "update", "delete", "noop"} {
		if types[typ] == 0 {
			t.Errorf("no %s events", typ)
		}
	}
	for u, e := range p.Expect {
		if maxT[u] != e.MaxT {
			t.Errorf("%s: newest delivered t %d, expectation %d", u, maxT[u], e.MaxT)
		}
		if e.Deleted != (e.Version == 0) {
			t.Errorf("%s: deleted %v with version %d", u, e.Deleted, e.Version)
		}
	}
}

func TestPlanTimestampsIncreasePerURL(t *testing.T) {
	p := NewPlan(1, 3000, 50, "http://o")
	// Two different events of one URL never share a t (the filter would drop one of them as
	// a duplicate, and the expectations would be ambiguous).
	seen := map[string]map[int64]string{}
	for _, b := range p.Batches {
		var raw []Event
		_ = json.Unmarshal(b.Body, &raw)
		for _, e := range raw {
			if seen[e.URL] == nil {
				seen[e.URL] = map[int64]string{}
			}
			if prev, ok := seen[e.URL][e.T]; ok && prev != e.Type {
				t.Fatalf("%s: two different events at t=%d (%s, %s)", e.URL, e.T, prev, e.Type)
			}
			seen[e.URL][e.T] = e.Type
		}
	}
}
