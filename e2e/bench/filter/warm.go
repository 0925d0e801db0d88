package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/e2e/bench/svc"
	"github.com/routemaster-drain/drain/e2e/bench/table"
	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// warmCase is the warm-mode case: see the package documentation.
type warmCase struct {
	rate, events int
	duration     time.Duration
	storage      string
}

func (w warmCase) measure(sc *stack.Scratch, bin string) error {
	ctx := context.Background()
	prefix := "benchwarm"
	env := []string{"NATS_URL=" + sc.NATS.URL(), "ROUTEMASTER_DRAIN_REDIS=redis://" + sc.Redis.Addr() + "/0/" + prefix,
		"DRAIN_PREFIX=" + prefix, "DRAIN_STREAM_STORAGE=" + w.storage, "DRAIN_LOG_LEVEL=error", "DRAIN_CACHE_MODE=warm",
		// One message at a time, as the reference runs the script: the time per message is the
		// path's own, not a share of concurrent messages' waits when a burst queues.
		"DRAIN_CONCURRENCY=1"}
	cfg, err := config.Load(config.Filter, env)
	if err != nil {
		return err
	}
	names := cfg.Streams.Names()
	nc, err := nats.Connect(sc.NATS.URL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := stream.Declare(ctx, js, cfg.Streams); err != nil {
		return err
	}
	n := int(w.duration.Seconds() * float64(w.rate))
	before, err := w.reference(ctx, sc.Redis.Addr(), prefix+"ref1", n, 3_000_000)
	if err != nil {
		return err
	}
	f, err := svc.Start(ctx, bin, "filter", env)
	if err != nil {
		return err
	}
	defer f.Close()
	bodies := makeBatches(n, w.events, n*w.events, 1_000_000)
	subject := names.Subject(stream.Events, "bench")
	interval := time.Second / time.Duration(w.rate)
	start := time.Now()
	for i, b := range bodies {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if _, err := js.PublishAsync(subject, b); err != nil {
			return err
		}
	}
	<-js.PublishAsyncComplete()
	if _, _, _, err := waitAcked(ctx, js, names, uint64(n), f); err != nil {
		return err
	}
	sum, count, err := histogram(f.URL("/metrics"), "drain_filter_processing_duration_seconds")
	if err != nil {
		return err
	}
	f.Close()
	after, err := w.reference(ctx, sc.Redis.Addr(), prefix+"ref2", n, 4_000_000)
	if err != nil {
		return err
	}
	filterMS, refMS := 1000*sum/count, (before+after)/2
	fmt.Fprintf(os.Stderr, "filter warm: %.2f ms per message over %d messages; reorder script %.2f ms before, %.2f ms after\n", filterMS, int(count), before, after)
	table.Row("filter", fmt.Sprintf("warm mode, %d-event messages at %d messages/s, c=1: time per message (script, index bumps, %d warm requests and a changed message published and acknowledged)", w.events, w.rate, w.events),
		fmt.Sprintf("%.2f ms", filterMS), "reorder script alone, same batches and pace (EVALSHA round trip)", fmt.Sprintf("%.2f ms", refMS), filterMS/refMS)
	return nil
}

// reference runs the reorder script on n fresh batches of w.events events at w.rate batches
// a second and returns its mean time per batch in ms.
func (w warmCase) reference(ctx context.Context, addr, ns string, n int, base int64) (float64, error) {
	bodies := makeBatches(n, w.events, n*w.events, base)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	f, err := reorder.New(rdb, reorder.Options{Namespace: ns, TTL: time.Hour})
	if err != nil {
		return 0, err
	}
	if err := f.Load(ctx); err != nil {
		return 0, err
	}
	interval := time.Second / time.Duration(w.rate)
	var total time.Duration
	start := time.Now()
	for i, b := range bodies {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		events, err := event.Parse(b)
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		if _, err := f.Run(ctx, uint64(i+1), events, true); err != nil {
			return 0, err
		}
		total += time.Since(t0)
	}
	return 1000 * total.Seconds() / float64(n), nil
}
