package filtering_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Two batches for one URL, an older delete and a newer create, filtered at the same moment (as
// when a paused filter resumes after an outage with both held): whatever the interleaving of
// their reorder scripts and index bumps, the delete's warm request never carries a higher index
// than the create's while asking to delete, since the warmer would then bust what the create
// stored.
func TestConcurrentDeleteNeverOutranksNewerCreate(t *testing.T) {
	e := newEnv(t, "DRAIN_CACHE_MODE=warm", "DRAIN_CONCURRENCY=64")
	const urls = 150
	for i := range urls {
		u := url(fmt.Sprintf("race/%d", i))
		e.publish("stuff", ev{"delete", u, 10})
		e.publish("stuff", ev{"create", u, 20})
	}
	e.startFilter()
	e.waitDone(30 * time.Second)
	type warm struct {
		typ   string
		index int64
	}
	byURL := map[string][]warm{}
	for _, m := range e.messages(stream.Warm) {
		r, err := cache.ParseWarmRequest(m.Events[0].Raw)
		if err != nil {
			t.Fatal(err)
		}
		byURL[r.URL] = append(byURL[r.URL], warm{r.Type, r.Index})
	}
	bad := 0
	for u, ws := range byURL {
		var create, del int64
		for _, w := range ws {
			switch w.typ {
			case cache.WarmCreate:
				create = w.index
			case cache.WarmDelete:
				del = w.index
			}
		}
		if del > create {
			bad++
			if bad <= 3 {
				t.Errorf("%s: warm requests %+v: the older delete outranks the newer create", u, ws)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d URLs would end busted though their newest event is a create", bad, urls)
	}
}
