// Command filter benchmarks the filter service: events/s through one filter process over
// 100-event batches pre-loaded in the events stream, next to the rate at which the same reorder
// script runs straight against Redis (EVALSHA, same concurrency, same kind of batches) measured
// in the same run, and the Redis commands the filter sends per batch; on one Redis and on a
// Redis Cluster, where it also reports each master's share of the script time; and the Redis
// time of the reorder script per 100 fresh events next to a minimal script doing the same
// writes. It prints rows of the shared benchmark table:
//
//	cd e2e && go run ./bench/filter            # or: make bench
//	go run ./bench/filter -batches 3000 -events 100 -conc 0,8 -cluster 3 -storage memory
//
// It starts a private embedded JetStream server, a private redis-server (from PATH) and, with
// -cluster N, a Redis Cluster of N masters (stack.Scratch.StartRedisCluster) on random ports,
// builds the filter binary (../services/filter) and runs it as a separate process per case,
// configured through its environment. Batches are fresh: every event is newer than the state of
// its URL, so every event is written, marked dirty and published (the filter's most expensive
// case). The cluster case runs at the last concurrency of -conc.
//
// The filter's rate is timed on its durable consumer, from the first ack seen to the last
// batch acked, so process start-up is left out. Its Redis commands are read from every
// master's INFO commandstats before the process starts and after it has stopped, and only the
// commands it sends are counted per batch: the commands the reorder script runs inside Redis
// (which Redis counts too) are told apart by the names the reference run, which sends nothing
// but the script, makes Redis count; connection set-up (HELLO) and the PING behind /readyz are
// left out. Redis counts commands, not round trips: the filter sends a batch's script calls
// (one per bucket present) in one pipeline.
//
// The script-time row runs batches through reorder.Filter.Run and through minimal.lua (MGET,
// compare, SET PX per URL, SADD: the writes the filter needs and nothing else), split by bucket
// the same way, in alternating segments on the one Redis, and compares the cmdstat_evalsha usec
// Redis spent per 100 events.
//
// Warm mode (-warm-rate messages/s, 0 skips it): the filter with DRAIN_CACHE_MODE=warm over
// -warm-events-event batches (33: what one 100-event POST over 3 topics gives a message)
// published at a steady pace for -warm-duration, as the e2e load sends them, handled one at a
// time (DRAIN_CONCURRENCY=1, as the reference calls the script). Each message runs
// the reorder script, bumps the invalidation index of its URLs and publishes a warm request
// per URL and one changed message, waiting for every PubAck. Its time per message
// (drain_filter_processing_duration_seconds) sits beside the reorder script's own time on batches of the
// same shape at the same pace, straight from this process (EVALSHA round trip), measured
// before and after the filter in the same run.
package main

import (
	"bufio"
	"context"
	_ "embed"
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
	"github.com/routemaster-drain/drain/pkg/dirty"
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
	concs := flag.String("conc", "0", "comma-separated filter concurrencies (DRAIN_CONCURRENCY; 0 = its default), one row each")
	masters := flag.Int("cluster", 3, "masters of the Redis Cluster of the cluster rows (0: no cluster rows)")
	storage := flag.String("storage", "file", "stream storage: file or memory")
	bin := flag.String("bin", "", "directory holding a built filter binary to run (default: build ../services/filter)")
	var w warmCase
	flag.IntVar(&w.rate, "warm-rate", 50, "messages/s of the warm-mode case (0 skips it)")
	flag.IntVar(&w.events, "warm-events", 33, "events per message of the warm-mode case")
	flag.DurationVar(&w.duration, "warm-duration", 10*time.Second, "length of the warm-mode case")
	flag.Parse()
	w.storage = *storage
	if err := run(*batches, *events, *urls, *concs, *masters, *storage, *bin, w); err != nil {
		fmt.Fprintln(os.Stderr, "bench filter:", err)
		os.Exit(1)
	}
}

//go:embed minimal.lua
var minimalLua string

// minimalScript does the writes the filter needs for a bucket's events, and nothing else.
var minimalScript = redis.NewScript(minimalLua)

// target is the Redis a case runs against: one server, or a cluster's seed nodes.
type target struct {
	name    string
	addrs   []string
	cluster bool
}

// url is the drain's setting for namespace ns.
func (t target) url(ns string) string {
	urls := make([]string, len(t.addrs))
	for i, a := range t.addrs {
		urls[i] = "redis://" + a + "/0/" + ns
	}
	return strings.Join(urls, ",")
}

// client returns a new client of the target.
func (t target) client(pool int) redis.UniversalClient {
	if t.cluster {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: t.addrs, PoolSize: pool})
	}
	return redis.NewClient(&redis.Options{Addr: t.addrs[0], PoolSize: pool})
}

// masters returns the addresses of the target's masters, sorted.
func (t target) masters(ctx context.Context) ([]string, error) {
	if !t.cluster {
		return t.addrs, nil
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: t.addrs})
	defer c.Close()
	var mu sync.Mutex
	var out []string
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		mu.Lock()
		out = append(out, m.Options().Addr)
		mu.Unlock()
		return nil
	})
	slices.Sort(out)
	return out, err
}

func run(nBatches, nEvents, nURLs int, concs string, masters int, storage, bin string, w warmCase) error {
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
	single := target{name: "one Redis", addrs: []string{sc.Redis.Addr()}}
	var last int
	for i, c := range strings.Split(concs, ",") {
		if strings.TrimSpace(c) == "" {
			continue
		}
		conc, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || conc < 0 {
			return fmt.Errorf("-conc: bad concurrency %q", c)
		}
		last = conc
		// Each case has its own prefix and Redis namespace, so it starts from blank state.
		if err := measure(bin, sc.NATS.URL(), single, fmt.Sprint("bench", i), nBatches, nEvents, nURLs, conc, storage); err != nil {
			return err
		}
	}
	if err := scriptCost(context.Background(), sc.Redis.Addr(), "benchscript", max(nBatches/3, 100), nEvents, nURLs); err != nil {
		return err
	}
	if masters > 0 {
		cl, err := sc.StartRedisCluster(masters)
		if err != nil {
			return err
		}
		tg := target{name: fmt.Sprintf("Redis Cluster of %d masters", masters), addrs: cl.Addrs(), cluster: true}
		if err := measure(bin, sc.NATS.URL(), tg, "benchcl", nBatches, nEvents, nURLs, last, storage); err != nil {
			return err
		}
	}
	return nil
}

// statsReader reads INFO commandstats of every master of a target, each on a connection of
// its own.
type statsReader map[string]*redis.Client

func newStatsReader(addrs []string) statsReader {
	r := statsReader{}
	for _, a := range addrs {
		r[a] = redis.NewClient(&redis.Options{Addr: a, PoolSize: 1})
	}
	return r
}

func (r statsReader) Close() {
	for _, c := range r {
		_ = c.Close()
	}
}

// read returns every master's command stats.
func (r statsReader) read(ctx context.Context) (map[string]map[string]cmdStat, error) {
	out := map[string]map[string]cmdStat{}
	for a, c := range r {
		st, err := commandStats(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		out[a] = st
	}
	return out, nil
}

// measure runs one case: pre-load, reference, filter, reference again; it prints its rows.
func measure(bin, natsURL string, tg target, prefix string, nBatches, nEvents, nURLs, conc int, storage string) error {
	env := []string{"NATS_URL=" + natsURL, "ROUTEMASTER_DRAIN_REDIS=" + tg.url(prefix),
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

	// The bench's own view of Redis's counters, on connections of its own.
	masters, err := tg.masters(ctx)
	if err != nil {
		return err
	}
	stats := newStatsReader(masters)
	defer stats.Close()
	refStart, err := stats.read(ctx)
	if err != nil {
		return err
	}
	var err2 error
	before := reference(ctx, tg, prefix+"ref1", nBatches, nEvents, nURLs, cfg.Consumer.Concurrency, &err2)
	if err2 != nil {
		return err2
	}
	refEnd, err := stats.read(ctx)
	if err != nil {
		return err
	}
	inScript := scriptCommands(sumCalls(diffAll(refEnd, refStart)))

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
	if sum, count, err := histogram(f.URL("/metrics"), "drain_filter_processing_duration_seconds"); err != nil {
		fmt.Fprintln(os.Stderr, "filter: metrics:", err)
	} else if count > 0 {
		fmt.Fprintf(os.Stderr, "filter: mean time per message %.2f ms over %d messages\n", 1000*sum/count, int64(count))
	}
	f.Close() // SIGTERM: the filter finishes, acks and closes its Redis connections
	filterEnd, err := stats.read(ctx)
	if err != nil {
		return err
	}
	during := diffAll(filterEnd, refEnd)
	cmds := sumCalls(during)
	cmds["info"] -= int64(len(masters)) // the bench's own INFO that read filterEnd
	trips, breakdown := topLevel(cmds, inScript)
	fmt.Fprintf(os.Stderr, "filter: Redis commands during the filter process: %s\n", breakdown)
	filterRate := float64(uint64(nEvents)*(uint64(nBatches)-first)) / t2.Sub(t1).Seconds()

	// Reference: the same script straight against Redis, same concurrency, fresh batches of
	// the same shape; measured before and after the filter, as the machine's load drifts.
	refRate := (before + reference(ctx, tg, prefix+"ref2", nBatches, nEvents, nURLs, cfg.Consumer.Concurrency, &err)) / 2
	if err != nil {
		return err
	}

	label := fmt.Sprintf("%d-event batches, fresh, c=%d, dirty on, cache off, %s", nEvents, cfg.Consumer.Concurrency, tg.name)
	table.Row("filter", label, table.Rate(filterRate), "reorder script via EVALSHA", table.Rate(refRate), filterRate/refRate)
	table.Row("filter", fmt.Sprintf("Redis commands per %d-event batch (INFO commandstats, top-level only), %s", nEvents, tg.name),
		fmt.Sprintf("%.2f", float64(trips)/float64(nBatches)), "target", fmt.Sprintf("at most %d: one script call per bucket present, all in one pipeline", dirty.Buckets), 0)
	if tg.cluster {
		var total float64
		usec := make([]float64, len(masters))
		for i, m := range masters {
			for name, st := range during[m] {
				if scriptCall(name) {
					usec[i] += float64(st.usec)
				}
			}
			total += usec[i]
		}
		parts := make([]string, len(masters))
		most := 0.0
		for i, u := range usec {
			parts[i] = fmt.Sprintf("%.0f %%", 100*u/total)
			most = max(most, u/total)
		}
		table.Row("filter", fmt.Sprintf("each master's share of the filter's script time (cmdstat_evalsha usec), %s", tg.name),
			strings.Join(parts, " / "), "even split", fmt.Sprintf("%.0f %%", 100/float64(len(masters))), most*float64(len(masters)))
	}
	return nil
}

// scriptCost prints the Redis time per 100 fresh events of the reorder script (through
// reorder.Filter.Run) and of minimal.lua over the same 2n batches split by bucket the same way,
// each script in its own namespace, on the server at addr.
func scriptCost(ctx context.Context, addr, ns string, n, size, urls int) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4})
	defer rdb.Close()
	stats := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
	defer stats.Close()
	f, err := reorder.New(rdb, reorder.Options{Namespace: ns + "-reorder", TTL: time.Hour})
	if err != nil {
		return err
	}
	if err := f.Load(ctx); err != nil {
		return err
	}
	if err := minimalScript.Load(ctx, rdb).Err(); err != nil {
		return err
	}
	bodies := makeBatches(2*n, size, urls, 3_000_000)
	batches := make([][]event.Event, len(bodies))
	for i, b := range bodies {
		var err error
		if batches[i], err = event.Parse(b); err != nil {
			return err
		}
	}
	usec := func() (float64, error) {
		st, err := commandStats(ctx, stats)
		return float64(st["evalsha"].usec), err
	}
	// Batch by batch, each through both scripts, so both see the same load on a shared machine.
	var ours, minimal float64
	for i, b := range batches {
		seq := uint64(i + 1)
		for _, which := range []*float64{&ours, &minimal} {
			start, err := usec()
			if err != nil {
				return err
			}
			if which == &ours {
				_, err = f.Run(ctx, seq, b, true)
			} else {
				err = runMinimal(ctx, rdb, ns+"-minimal", seq, b)
			}
			if err != nil {
				return err
			}
			end, err := usec()
			if err != nil {
				return err
			}
			*which += end - start
		}
	}
	per := float64(len(batches)*size) / 100
	ours, minimal = ours/per, minimal/per
	fmt.Fprintf(os.Stderr, "script time per 100 fresh events: reorder.lua %.1f µs, minimal.lua %.1f µs\n", ours, minimal)
	table.Row("filter", fmt.Sprintf("Redis time per 100 fresh events (cmdstat_evalsha usec), %d-event batches split by bucket, one Redis; target ratio ≤ 1.2", size),
		fmt.Sprintf("%.0f µs reorder.lua", ours), "minimal script (MGET, compare, SET PX per URL, SADD)", fmt.Sprintf("%.0f µs", minimal), ours/minimal)
	return nil
}

// runMinimal runs minimal.lua once per bucket of batch (one event per URL), in one pipeline.
func runMinimal(ctx context.Context, rdb *redis.Client, ns string, seq uint64, batch []event.Event) error {
	type call struct {
		keys []string
		args []any
	}
	groups := map[int]*call{}
	for _, e := range batch {
		b := dirty.Bucket(e.URL)
		k := dirty.KeysFor(ns, b)
		c := groups[b]
		if c == nil {
			c = &call{keys: []string{k.Items}, args: []any{time.Hour.Milliseconds(), seq, len(k.State)}}
			groups[b] = c
		}
		c.keys = append(c.keys, k.State+e.URL)
		c.args = append(c.args, e.T)
	}
	pipe := rdb.Pipeline()
	for _, c := range groups {
		minimalScript.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// cmdStat is one command's INFO commandstats counters.
type cmdStat struct {
	calls, usec int64
}

// commandStats returns the calls and microseconds of every command Redis has counted (INFO
// commandstats), by lower-case command name ("client|setinfo" for a subcommand).
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]cmdStat, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	out := map[string]cmdStat{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		var st cmdStat
		for _, field := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(field, "=")
			var dst *int64
			switch k {
			case "calls":
				dst = &st.calls
			case "usec":
				dst = &st.usec
			default:
				continue
			}
			if *dst, err = strconv.ParseInt(v, 10, 64); err != nil {
				return nil, fmt.Errorf("INFO commandstats: %q: %w", line, err)
			}
		}
		out[strings.ToLower(name)] = st
	}
	return out, nil
}

// diffAll returns after - before, per master and command, leaving out commands not called in
// between.
func diffAll(after, before map[string]map[string]cmdStat) map[string]map[string]cmdStat {
	out := map[string]map[string]cmdStat{}
	for m, cmds := range after {
		out[m] = map[string]cmdStat{}
		for k, v := range cmds {
			if d := (cmdStat{v.calls - before[m][k].calls, v.usec - before[m][k].usec}); d.calls != 0 {
				out[m][k] = d
			}
		}
	}
	return out
}

// sumCalls returns the calls of every command, summed over the masters.
func sumCalls(per map[string]map[string]cmdStat) map[string]int64 {
	out := map[string]int64{}
	for _, cmds := range per {
		for k, v := range cmds {
			out[k] += v.calls
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
func reference(ctx context.Context, tg target, ns string, n, size, urls, conc int, errp *error) float64 {
	bodies := makeBatches(n, size, urls, 2_000_000)
	parsed := make([][]event.Event, len(bodies))
	for i, b := range bodies {
		var err error
		if parsed[i], err = event.Parse(b); err != nil {
			*errp = err
			return 0
		}
	}
	rdb := tg.client(64)
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
