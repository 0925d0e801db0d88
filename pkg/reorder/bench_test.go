package reorder_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
)

// BenchmarkRun measures one 100-event batch over 100 distinct URLs: fresh (every event newer
// than the state) and stale (every event already seen).
func BenchmarkRun(b *testing.B) {
	c := newRedis(b)
	ctx := context.Background()
	f := newFilter(b, c, reorder.Options{TTL: time.Hour})
	if err := f.Load(ctx); err != nil {
		b.Fatal(err)
	}
	events := make([]event.Event, 100)
	for i := range events {
		events[i] = ev(event.Update, u(fmt.Sprint("bench/", i)), 1)
	}
	b.Run("fresh", func(b *testing.B) {
		b.ReportAllocs()
		for n := 0; b.Loop(); n++ {
			for i := range events {
				events[i].T = int64(n + 2)
			}
			if _, err := f.Run(ctx, uint64(n), events, true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("stale", func(b *testing.B) {
		b.ReportAllocs()
		for n := 0; b.Loop(); n++ {
			if _, err := f.Run(ctx, uint64(n), events, true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
}
