// Command filter benchmarks the filter service: events/s through one filter (run in this
// process, on its own NATS connection and Redis client) over 100-event batches pre-loaded in
// the events stream, next to the rate at which the same reorder script runs straight against
// Redis (EVALSHA, same concurrency, same kind of batches) measured in the same run, and the
// Redis round trips the filter makes per batch. It prints rows of the shared benchmark table:
//
//	cd e2e && go run ./bench/filter            # or: make bench
//	go run ./bench/filter -batches 3000 -events 100 -conc 0,32 -storage memory
//
// It starts a private embedded JetStream server and a private redis-server (from PATH) on
// random ports. Batches are fresh: every event is newer than the state of its URL, so every
// event is written, marked dirty and published (the filter's most expensive case).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/config"
	"github.com/routemaster-drain/drain/e2e/bench/table"
	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/event"
	"github.com/routemaster-drain/drain/reorder"
	"github.com/routemaster-drain/drain/services/filter/filter"
	"github.com/routemaster-drain/drain/stream"
)

func main() {
	batches := flag.Int("batches", 3000, "batches pre-loaded in the events stream")
	events := flag.Int("events", 100, "events per batch")
	urls := flag.Int("urls", 50000, "distinct URLs the events cycle over")
	concs := flag.String("conc", "0,32", "comma-separated filter concurrencies (DRAIN_CONCURRENCY; 0 = its default), one row each")
	storage := flag.String("storage", "file", "stream storage: file or memory")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the filter phase to this file")
	flag.Parse()
	profile = *cpuprofile
	if err := run(*batches, *events, *urls, *concs, *storage); err != nil {
		fmt.Fprintln(os.Stderr, "bench filter:", err)
		os.Exit(1)
	}
}

// profile is the -cpuprofile path.
var profile string

func run(nBatches, nEvents, nURLs int, concs, storage string) error {
	sc, err := stack.StartScratch("bench-filter-", true)
	if err != nil {
		return err
	}
	defer sc.Close()
	for i, c := range strings.Split(concs, ",") {
		conc, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || conc < 0 {
			return fmt.Errorf("-conc: bad concurrency %q", c)
		}
		// Each case has its own prefix and Redis namespace, so it starts from blank state.
		if err := measure(sc.NATS.URL(), sc.Redis.Addr(), fmt.Sprint("bench", i), nBatches, nEvents, nURLs, conc, storage); err != nil {
			return err
		}
	}
	return nil
}

// measure runs one case: pre-load, reference, filter, reference again; it prints two rows.
func measure(natsURL, redisAddr, prefix string, nBatches, nEvents, nURLs, conc int, storage string) error {
	env := []string{"NATS_URL=" + natsURL, "ROUTEMASTER_DRAIN_REDIS=redis://" + redisAddr + "/0/" + prefix,
		"DRAIN_PREFIX=" + prefix, "DRAIN_STREAM_STORAGE=" + storage, "DRAIN_LOG_LEVEL=error",
		"DRAIN_MAX_ACK_PENDING=10000"}
	if conc > 0 {
		env = append(env, "DRAIN_CONCURRENCY="+strconv.Itoa(conc))
	}
	cfg, err := config.Load(config.Filter, env)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	names := stream.Names{Prefix: prefix}

	// Pre-load the batches from a separate connection.
	loadNC, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer loadNC.Close()
	loadJS, _ := jetstream.New(loadNC)
	if err := stream.Declare(ctx, loadJS, names, cfg.Streams); err != nil {
		return err
	}
	bodies := makeBatches(nBatches, nEvents, nURLs, 1_000_000)
	for i, b := range bodies {
		if _, err := loadJS.PublishAsync(names.Subject(stream.Events, "bench"), b); err != nil {
			return err
		}
		if i%500 == 499 {
			<-loadJS.PublishAsyncComplete()
		}
	}
	<-loadJS.PublishAsyncComplete()
	fmt.Fprintf(os.Stderr, "pre-loaded %d batches of %d events\n", nBatches, nEvents)

	var err2 error
	before := reference(ctx, redisAddr, prefix+"ref1", nBatches, nEvents, nURLs, cfg.Consumer.Concurrency, &err2)
	if err2 != nil {
		return err2
	}

	// The filter, with its own connection and a Redis client counting round trips.
	nc, js, err := stream.Connect(cfg.NATS, "bench-filter", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 64})
	defer rdb.Close()
	hook := &countHook{}
	rdb.AddHook(hook)
	reg := prometheus.NewRegistry()
	f, err := filter.New(cfg, js, rdb, rdb, reg, log)
	if err != nil {
		return err
	}
	if err := reorder.New(rdb, prefix, time.Hour).Load(ctx); err != nil {
		return err
	}
	hook.n.Store(0)
	if profile != "" {
		pf, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer pf.Close()
		_ = pprof.StartCPUProfile(pf)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f.Run(runCtx) }()
	if err := waitAcked(ctx, loadJS, names, uint64(nBatches)); err != nil {
		return err
	}
	took := time.Since(start)
	pprof.StopCPUProfile()
	stop()
	if err := <-done; err != nil {
		return err
	}
	trips := float64(hook.n.Load()) / float64(nBatches)
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "drain_filter_processing_seconds" {
				h := mf.GetMetric()[0].GetHistogram()
				fmt.Fprintf(os.Stderr, "filter: mean time per message %.2f ms over %d messages\n", 1000*h.GetSampleSum()/float64(h.GetSampleCount()), h.GetSampleCount())
			}
		}
	}
	filterRate := float64(nBatches*nEvents) / took.Seconds()

	// Reference: the same script straight against Redis, same concurrency, fresh batches of
	// the same shape; measured before and after the filter, as the machine's load drifts.
	refRate := (before + reference(ctx, redisAddr, prefix+"ref2", nBatches, nEvents, nURLs, cfg.Consumer.Concurrency, &err)) / 2
	if err != nil {
		return err
	}

	label := fmt.Sprintf("%d-event batches, fresh, c=%d, dirty on, cache off", nEvents, cfg.Consumer.Concurrency)
	table.Row("filter", label, table.Rate(filterRate), "reorder script via EVALSHA", table.Rate(refRate), filterRate/refRate)
	table.Row("filter", fmt.Sprintf("Redis round trips per %d-event batch", nEvents), fmt.Sprintf("%.2f", trips), "target", "1 (independent of batch size)", 0)
	return nil
}

// reference runs the reorder script straight against Redis (EVALSHA through reorder.Filter.Run)
// over n fresh batches from conc goroutines and returns the events/s; *errp receives the first
// error.
func reference(ctx context.Context, addr, ns string, n, size, urls, conc int, errp *error) float64 {
	bodies := makeBatches(n, size, urls, 2_000_000)
	parsed := make([][]event.Event, len(bodies))
	for i, b := range bodies {
		var err error
		if parsed[i], err = event.Parse(b); err != nil {
			*errp = err
			return 0
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	defer rdb.Close()
	f := reorder.New(rdb, ns, time.Hour)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(parsed)) {
					return
				}
				if _, err := f.Run(ctx, uint64(i+1), parsed[i], true); err != nil {
					once.Do(func() { *errp = err })
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(n*size) / time.Since(start).Seconds()
	fmt.Fprintf(os.Stderr, "reference %s: %s, mean %.2f ms per script\n", ns, table.Rate(rate), 1000*float64(conc)*float64(size)/rate)
	return rate
}

// makeBatches returns n JSON batches of size events; batch i holds URLs i*size.. (mod urls),
// all at t = base + i, so every event is newer than anything stored for its URL.
func makeBatches(n, size, urls int, base int64) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		var b strings.Builder
		b.WriteByte('[')
		for j := range size {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"topic":"bench","type":"update","url":"https://api.example.com/things/%d","t":%d}`, (i*size+j)%urls, base+int64(i))
		}
		b.WriteByte(']')
		out[i] = []byte(b.String())
	}
	return out
}

// waitAcked waits until the filter's consumer has acked every message up to last.
func waitAcked(ctx context.Context, js jetstream.JetStream, names stream.Names, last uint64) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		cons, err := js.Consumer(ctx, names.Stream(stream.Events), names.Durable(filter.ConsumerName))
		if err == nil {
			info, err := cons.Info(ctx)
			if err == nil && info.AckFloor.Stream >= last {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("filter did not finish within 10 minutes")
}

// countHook counts commands and pipelines sent: each is one round trip.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}
