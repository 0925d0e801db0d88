// Command filter benchmarks the filter service: events/s through one filter process over
// 100-event batches pre-loaded in the events stream, next to the rate at which the same reorder
// script runs straight against Redis (EVALSHA, same concurrency, same kind of batches) measured
// in the same run, and the Redis commands the filter sends per batch. It prints rows of the
// shared benchmark table:
//
//	cd e2e && go run ./bench/filter            # or: make bench
//	go run ./bench/filter -batches 3000 -events 100 -conc 0,32 -storage memory
//
// It starts a private embedded JetStream server and a private redis-server (from PATH) on
// random ports, builds the filter binary (../services/filter) and runs it as a separate process
// per case, configured through its environment. Batches are fresh: every event is newer than
// the state of its URL, so every event is written, marked dirty and published (the filter's
// most expensive case).
//
// The filter's rate is timed on its durable consumer, from the first ack seen to the last
// batch acked, so process start-up is left out. Its Redis commands are read from the server's
// INFO commandstats before the process starts and after it has stopped, and only the commands
// it sends are counted per batch: the commands the reorder script runs inside Redis (which
// Redis counts too) are told apart by the names the reference run, which sends nothing but the
// script, makes Redis count; connection set-up (HELLO) and the PING behind /readyz are left
// out. Redis counts commands, not round trips: a pipeline of n commands would count n.
//
// Warm mode (-warm-rate messages/s, 0 skips it): the filter with DRAIN_CACHE_MODE=warm over
// -warm-events-event batches (33: what one 100-event POST over 3 topics gives a message)
// published at a steady pace for -warm-duration, as the e2e load sends them, handled one at a
// time (DRAIN_CONCURRENCY=1, as the reference calls the script). Each message runs
// the reorder script, bumps the invalidation index of its URLs and publishes a warm request
// per URL and one changed message, waiting for every PubAck. Its time per message
// (drain_filter_processing_seconds) sits beside the reorder script's own time on batches of the
// same shape at the same pace, straight from this process (EVALSHA round trip), measured
// before and after the filter in the same run.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// consumerName is the filter's durable consumer before the prefix (filtering.ConsumerName,
// which the e2e module may not import).
const consumerName = "filter"

func main() {
	batches := flag.Int("batches", 3000, "batches pre-loaded in the events stream")
	events := flag.Int("events", 100, "events per batch")
	urls := flag.Int("urls", 50000, "distinct URLs the events cycle over")
	concs := flag.String("conc", "0,32", "comma-separated filter concurrencies (DRAIN_CONCURRENCY; 0 = its default), one row each")
	storage := flag.String("storage", "file", "stream storage: file or memory")
	bin := flag.String("bin", "", "directory holding a built filter binary to run (default: build ../services/filter)")
	var w warmCase
	flag.IntVar(&w.rate, "warm-rate", 50, "messages/s of the warm-mode case (0 skips it)")
	flag.IntVar(&w.events, "warm-events", 33, "events per message of the warm-mode case")
	flag.DurationVar(&w.duration, "warm-duration", 10*time.Second, "length of the warm-mode case")
	flag.Parse()
	w.storage = *storage
	if err := run(*batches, *events, *urls, *concs, *storage, *bin, w); err != nil {
		fmt.Fprintln(os.Stderr, "bench filter:", err)
		os.Exit(1)
	}
}

func run(nBatches, nEvents, nURLs int, concs, storage, bin string, w warmCase) error {
	sc, err := stack.StartScratch("bench-filter-", true)
	if err != nil {
		return err
	}
	defer sc.Close()
	if bin == "" {
		bin = sc.Dir
		if err := svc.Build(context.Background(), bin, "filter"); err != nil {
			return err
		}
	}
	if w.rate > 0 {
		if err := w.measure(sc, bin); err != nil {
			return err
		}
	}
	for i, c := range strings.Split(concs, ",") {
		if strings.TrimSpace(c) == "" {
			continue
		}
		conc, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || conc < 0 {
			return fmt.Errorf("-conc: bad concurrency %q", c)
		}
		// Each case has its own prefix and Redis namespace, so it starts from blank state.
		if err := measure(bin, sc.NATS.URL(), sc.Redis.Addr(), fmt.Sprint("bench", i), nBatches, nEvents, nURLs, conc, storage); err != nil {
			return err
		}
	}
	return nil
}

// measure runs one case: pre-load, reference, filter, reference again; it prints two rows.
func measure(bin, natsURL, redisAddr, prefix string, nBatches, nEvents, nURLs, conc int, storage string) error {
	env := []string{"NATS_URL=" + natsURL, "ROUTEMASTER_DRAIN_REDIS=redis://" + redisAddr + "/0/" + prefix,
		"DRAIN_PREFIX=" + prefix, "DRAIN_STREAM_STORAGE=" + storage, "DRAIN_LOG_LEVEL=error",
		"DRAIN_MAX_ACK_PENDING=10000"}
	if conc > 0 {
		env = append(env, "DRAIN_CONCURRENCY="+strconv.Itoa(conc))
	}
	// The filter process reads env; this process reads it the same way for the settings it
	// shares with the filter (streams, concurrency).
	cfg, err := config.Load(config.Filter, env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	names := cfg.Streams.Names()

	// Pre-load the batches from a separate connection.
	loadNC, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer loadNC.Close()
	loadJS, _ := jetstream.New(loadNC)
	if err := stream.Declare(ctx, loadJS, cfg.Streams); err != nil {
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

	// The bench's own view of Redis's counters, on a connection of its own.
	stats := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 1})
	defer stats.Close()
	refStart, err := commandStats(ctx, stats)
	if err != nil {
		return err
	}
	var err2 error
	before := reference(ctx, redisAddr, prefix+"ref1", nBatches, nEvents, nURLs, cfg.Consumer.Concurrency, &err2)
	if err2 != nil {
		return err2
	}
	refEnd, err := commandStats(ctx, stats)
	if err != nil {
		return err
	}
	inScript := scriptCommands(diff(refEnd, refStart))

	// The filter, a process of its own with its own NATS connection and Redis client.
	f, err := svc.Start(ctx, bin, "filter", env)
	if err != nil {
		return err
	}
	defer f.Close()
	first, t1, t2, err := waitAcked(ctx, loadJS, names, uint64(nBatches), f)
	if err != nil {
		return err
	}
	if first == 0 {
		fmt.Fprintf(os.Stderr, "filter: every batch was acked before the first look at its consumer; timed from readiness (raise -batches)\n")
	}
	if sum, count, err := histogram(f.URL("/metrics"), "drain_filter_processing_seconds"); err != nil {
		fmt.Fprintln(os.Stderr, "filter: metrics:", err)
	} else if count > 0 {
		fmt.Fprintf(os.Stderr, "filter: mean time per message %.2f ms over %d messages\n", 1000*sum/count, int64(count))
	}
	f.Close() // SIGTERM: the filter finishes, acks and closes its Redis connections
	filterEnd, err := commandStats(ctx, stats)
	if err != nil {
		return err
	}
	cmds := diff(filterEnd, refEnd)
	cmds["info"]-- // the bench's own INFO that read filterEnd
	trips, breakdown := topLevel(cmds, inScript)
	fmt.Fprintf(os.Stderr, "filter: Redis commands during the filter process: %s\n", breakdown)
	filterRate := float64(uint64(nEvents)*(uint64(nBatches)-first)) / t2.Sub(t1).Seconds()

	// Reference: the same script straight against Redis, same concurrency, fresh batches of
	// the same shape; measured before and after the filter, as the machine's load drifts.
	refRate := (before + reference(ctx, redisAddr, prefix+"ref2", nBatches, nEvents, nURLs, cfg.Consumer.Concurrency, &err)) / 2
	if err != nil {
		return err
	}

	label := fmt.Sprintf("%d-event batches, fresh, c=%d, dirty on, cache off", nEvents, cfg.Consumer.Concurrency)
	table.Row("filter", label, table.Rate(filterRate), "reorder script via EVALSHA", table.Rate(refRate), filterRate/refRate)
	table.Row("filter", fmt.Sprintf("Redis commands per %d-event batch (Redis INFO commandstats, top-level only)", nEvents),
		fmt.Sprintf("%.2f", float64(trips)/float64(nBatches)), "target", "1 (independent of batch size)", 0)
	return nil
}

// commandStats returns the calls of every command Redis has counted (INFO commandstats),
// by lower-case command name ("client|setinfo" for a subcommand).
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		for _, field := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("INFO commandstats: %q: %w", line, err)
				}
				out[strings.ToLower(name)] = n
			}
		}
	}
	return out, nil
}

// diff returns after - before, per command, leaving out commands not called in between.
func diff(after, before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Commands a client sends that are not work on a batch: connection set-up (go-redis sends
// HELLO and CLIENT SETINFO on every new connection), the bench's INFO, and PING, which the
// filter sends only to answer /readyz.
var setup = map[string]bool{"hello": true, "client|setinfo": true, "auth": true, "select": true, "ping": true, "info": true}

// scriptCall reports whether a command runs a script or function.
func scriptCall(name string) bool {
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		return true
	}
	return false
}

// scriptCommands returns the names of the commands counted during the reference run other than
// the script calls and connection set-up: the commands the reorder script runs inside Redis.
func scriptCommands(ref map[string]int64) map[string]bool {
	out := map[string]bool{}
	for name := range ref {
		if !scriptCall(name) && !setup[name] {
			out[name] = true
		}
	}
	return out
}

// topLevel returns the commands of cmds that a client sent for its batches (script calls and any
// other command not run inside the reorder script, connection set-up and health checks left
// out), and a description of every count.
func topLevel(cmds map[string]int64, inScript map[string]bool) (int64, string) {
	var n int64
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(cmds)) {
		v := cmds[name]
		if v == 0 {
			continue
		}
		kind := "top-level"
		switch {
		case inScript[name]:
			kind = "in script"
		case setup[name]:
			kind = "set-up/health"
		default:
			n += v
		}
		parts = append(parts, fmt.Sprintf("%s=%d (%s)", name, v, kind))
	}
	return n, strings.Join(parts, ", ")
}

// histogram reads the sum and count of a histogram without labels from a Prometheus text
// exposition at url.
func histogram(url, name string) (sum, count float64, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		metric, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch metric {
		case name + "_sum":
			dst = &sum
		case name + "_count":
			dst = &count
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", metric, err)
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("no %s histogram at %s", name, url)
	}
	return sum, count, nil
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
	f, err := reorder.New(rdb, reorder.Options{Namespace: ns, TTL: time.Hour})
	if err != nil {
		*errp = err
		return 0
	}
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

// waitAcked polls the filter's consumer until it has acked every message up to last. It returns
// the ack floor first seen above zero and when (the start of the timed window: the process's
// start-up is behind it), and when the last message was acked. If the first look already finds
// every message acked, the window starts at 0, when the process became ready.
func waitAcked(ctx context.Context, js jetstream.JetStream, names stream.Names, last uint64, f *svc.Service) (first uint64, t1, t2 time.Time, err error) {
	ready := time.Now()
	deadline := ready.Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		cons, err := js.Consumer(ctx, names.Stream(stream.Events), names.Durable(consumerName))
		if err == nil {
			info, err := cons.Info(ctx)
			now := time.Now()
			if err == nil && info.AckFloor.Stream > 0 {
				if t1.IsZero() {
					first, t1 = info.AckFloor.Stream, now
					if first >= last {
						return 0, ready, now, nil
					}
				}
				if info.AckFloor.Stream >= last {
					return first, t1, now, nil
				}
			}
		}
		if !f.Running() {
			return 0, t1, t2, fmt.Errorf("the filter process exited before acking every batch")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, t1, t2, fmt.Errorf("filter did not finish within 10 minutes")
}
