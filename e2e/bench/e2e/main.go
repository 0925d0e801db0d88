// Command e2e benchmarks the whole pipeline's latency: from the start of the POST that carries
// an event to the moment the event's URL is stored, freshly fetched, in the cache. It prints
// rows of the shared benchmark table on stdout and a per-stage breakdown on stderr:
//
//	cd e2e && go run ./bench/e2e            # or: make bench
//	go run ./bench/e2e -rates '' -rate 5000 -duration 10s -warmers 2 -env DRAIN_WARM_COALESCE=0s
//	go run ./bench/e2e -rates 1000,2000 -rate 0 -profile /tmp/prof   # a sweep alone, with profiles
//
// Runs. A rate sweep first: one run per rate of -rates (1,000, 2,000, 4,000 and 8,000 events/s,
// -sweep-duration each), then -bisect more runs halving the interval between the highest rate
// whose p99 stayed within -target (50 ms) and the lowest whose p99 did not, which gives the
// highest rate the pipeline serves within the target on this machine; then the same sweep with
// the binaries of the git revision -ref-rev (the previous round's last commit by default,
// exported with git archive and built), the reference of the highest-rate row. Then the main
// run at -rate (10,000 events/s) for -duration, with the raw JetStream reference; at rates the machine cannot
// sustain the backlog queues, and the run waits up to -drain for every event to be stored, so
// the row says whether anything was lost and the rate at which the backlog was stored. Every
// run starts its servers and services afresh from the binaries built once.
//
// Method. The program builds the four service binaries (or takes them from -bin) and starts,
// privately: an embedded JetStream server with a file store, a redis-server with AOF (everysec),
// an origin in this process that answers every GET after -origin-delay (1 ms) with a JSON body
// naming the URL, and one ingest, one filter (DRAIN_CACHE_MODE=warm), -warmers warmers and one
// sweeper as separate processes, each with its service defaults except the log level. A paced
// load generator posts batches of -batch events (default 100, spread over 3 topics) to ingest at
// -rate events/s (default 10,000) with up to -inflight POSTs at once, for -warmup (3 s, not
// measured) and then -duration (20 s, measured). Every event is a create or an update with a
// fresh t of a URL used by no other event, so each event causes exactly one fetch and one store
// and the match between an event and its store is unambiguous.
//
// The store is observed with Redis keyspace notifications: `notify-keyspace-events Eh` on the
// private Redis and a subscription to `__keyevent@0__:hset`, which carries the key of every
// HSET. On a cache key `<ns>:cache:{<url>}` the only HSET is the one in store.lua, run when the
// warmer stores a fetched representation; the filter's invalidation bump is an HINCRBY (event
// hincrby, not subscribed). The first hset notification per URL is taken. An event's latency is
// notification receipt − its POST's start. Events whose store does not arrive within -drain
// after the last POST count as lost: they sort above every measured latency.
//
// Same-run references: the POST → 204 latency of the same requests (the ingest stage alone;
// ratio = end-to-end p99 / POST p99), and, after the services are stopped, a raw JetStream
// publish → pull-consumer receive latency on the same server at the same rate and message
// shape (one message per topic per batch, each PubAck awaited like ingest does).
//
// For finding the stage that dominates, the program also records per event when its warm
// request is published by the filter (a core NATS subscription on <prefix>.warm) and when the
// origin receives its GET, samples the filter's and warmers' consumer backlogs every second,
// and at the end prints on stderr the CPU each process used (and the whole machine's), and the
// filter's and warmers' own metrics (mean fetch and processing times, coalesced requests).
// Settings can be tried without code changes: -env for every service, -warmer-env for the
// warmers only (e.g. DRAIN_CONCURRENCY=32,DRAIN_WARM_HOST_CONCURRENCY=32), -warmers N.
//
// With -profile DIR every service runs with DRAIN_PPROF=true, and DIR receives, per run, a CPU
// profile of the filter and of each warmer over the measured load (at most -profile-seconds)
// and their allocation profiles at its end: <service>-<rate>-cpu.pprof, -allocs.pprof.
//
// Every child process is stopped when the program ends, on error and on SIGINT/SIGTERM.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/e2e/bench/svc"
	"github.com/routemaster-drain/drain/e2e/bench/table"
	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/stream"
)

const (
	token     = "bench"
	prefix    = "bench"
	namespace = "bench"
)

var topics = []string{"orders", "riders", "restaurants"}

// previousRound is the last commit of the previous round of work (2026-11-30), whose binaries
// run the same sweep as the reference of the highest-rate row.
const previousRound = "0d85844"

type options struct {
	rate, batch, inflight, warmers int
	warmup, duration, drain, ref   time.Duration
	originDelay                    time.Duration
	bin, root, env, warmerEnv      string
	verbose                        bool

	rates          string        // the sweep's rates
	sweepDuration  time.Duration // measured load of each sweep run
	bisect         int           // runs refining the highest rate within target
	refRev         string        // the reference sweep's git revision
	target         time.Duration // the p99 the sweep looks for
	profile        string        // directory for the services' profiles
	profileSeconds int
}

func main() {
	var o options
	flag.IntVar(&o.rate, "rate", 10000, "events per second offered to ingest in the main run (0: no main run)")
	flag.IntVar(&o.batch, "batch", 100, "events per POST (spread over 3 topics)")
	flag.IntVar(&o.inflight, "inflight", 16, "most POSTs at once")
	flag.IntVar(&o.warmers, "warmers", 1, "warmer processes")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before the measurement of each run (not measured)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured load of the main run")
	flag.DurationVar(&o.drain, "drain", 3*time.Minute, "how long to wait for the last stores after the last POST (the backlog of a rate above what the machine sustains)")
	flag.DurationVar(&o.ref, "ref", 5*time.Second, "duration of the raw JetStream reference (0 skips it)")
	flag.DurationVar(&o.originDelay, "origin-delay", time.Millisecond, "origin latency per GET")
	flag.StringVar(&o.bin, "bin", "", "directory with the ingest, filter, warmer and sweeper binaries (default: build them)")
	flag.StringVar(&o.root, "root", "..", "repository root, to build the binaries from")
	flag.StringVar(&o.env, "env", "", "extra environment for every service, comma separated (e.g. DRAIN_WARM_COALESCE=0s,DRAIN_CONCURRENCY=32)")
	flag.StringVar(&o.warmerEnv, "warmer-env", "", "extra environment for the warmers only, comma separated (e.g. DRAIN_CONCURRENCY=32,DRAIN_WARM_HOST_CONCURRENCY=32)")
	flag.BoolVar(&o.verbose, "v", false, "copy the services' logs to stderr (they always go to files in the work directory)")
	flag.StringVar(&o.rates, "rates", "1000,2000,4000,8000", "comma-separated rates of the sweep, events/s (empty: no sweep)")
	flag.DurationVar(&o.sweepDuration, "sweep-duration", 10*time.Second, "measured load of each sweep run")
	flag.IntVar(&o.bisect, "bisect", 2, "sweep runs refining the highest rate whose p99 is within -target")
	flag.StringVar(&o.refRev, "ref-rev", previousRound, "git revision whose binaries run the same sweep as the reference ('': none)")
	flag.DurationVar(&o.target, "target", 50*time.Millisecond, "the POST → warm cache p99 the sweep looks for")
	flag.StringVar(&o.profile, "profile", "", "directory for the filter's and warmers' CPU and allocation profiles (DRAIN_PPROF=true)")
	flag.IntVar(&o.profileSeconds, "profile-seconds", 10, "longest CPU profile, from the start of the measured load")
	flag.Parse()
	if o.rate < 0 || o.batch <= 0 || o.inflight <= 0 || o.warmers <= 0 || o.duration <= 0 || o.sweepDuration <= 0 {
		fmt.Fprintln(os.Stderr, "bench e2e: -batch, -inflight, -warmers and the durations must be positive, -rate not negative")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench e2e:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "# e2e: "+format+"\n", args...)
}

// timeline holds, per event id, Unix nanoseconds of each step (0: not seen).
type timeline struct {
	post, ack, warm, fetch, store []atomic.Int64
}

func newTimeline(n int) *timeline {
	return &timeline{post: make([]atomic.Int64, n), ack: make([]atomic.Int64, n), warm: make([]atomic.Int64, n),
		fetch: make([]atomic.Int64, n), store: make([]atomic.Int64, n)}
}

// mark records now for id in steps, once.
func mark(steps []atomic.Int64, id int, now int64) {
	if id >= 0 && id < len(steps) {
		steps[id].CompareAndSwap(0, now)
	}
}

// idOf returns the event id that ends a URL or path (".../<topic>/<id>"), or -1.
func idOf(s string) int {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return -1
	}
	id, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return -1
	}
	return id
}

// result is what one run measured.
type result struct {
	rate, achieved   float64 // offered and achieved events/s
	p50, p99, max    float64 // POST → warm cache, ms (+Inf: lost)
	postP50, postP99 float64 // POST → 204, ms
	measured, lost   int
	storedRate       float64 // events stored per second, first POST to last store
	refP50, refP99   float64 // raw JetStream reference, ms (0: not run)
}

func (r *result) within(target time.Duration) bool {
	return r.lost == 0 && r.p99 <= float64(target)/float64(time.Millisecond)
}

func run(ctx context.Context, o options) error {
	work, err := os.MkdirTemp("", "bench-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(work, "bin")
		t0 := time.Now()
		if err := stack.Build(ctx, o.root, bin, os.Stderr, stack.Binaries...); err != nil {
			return err
		}
		logf("built %v in %s", stack.Binaries, time.Since(t0).Round(time.Millisecond))
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	once := func(bin string, rate int, duration, ref time.Duration) (*result, error) {
		ro := o
		ro.rate, ro.duration, ro.ref = rate, duration, ref
		dir, err := os.MkdirTemp(work, fmt.Sprintf("rate-%d-", rate))
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		return runOnce(ctx, ro, bin, dir)
	}

	// The sweep, then the bisection between the highest rate within the target and the
	// lowest beyond it; then the same with the previous round's binaries, the reference.
	// sweep returns the highest rate within the target (0: none) and the lowest beyond it
	// (0: none), and whether it ran at all.
	sweep := func(bin, who string) (pass, fail int, ran bool, err error) {
		for rs := range strings.SplitSeq(o.rates, ",") {
			if rs = strings.TrimSpace(rs); rs == "" {
				continue
			}
			rate, err := strconv.Atoi(rs)
			if err != nil || rate <= 0 {
				return 0, 0, false, fmt.Errorf("-rates: bad rate %q", rs)
			}
			r, err := once(bin, rate, o.sweepDuration, 0)
			if err != nil {
				return 0, 0, false, err
			}
			printRun(o, who, r)
			ran = true
			switch {
			case r.within(o.target):
				pass = max(pass, rate)
			case fail == 0 || rate < fail:
				fail = rate
			}
		}
		for range o.bisect {
			if !ran || pass == 0 || fail == 0 || fail <= pass {
				break
			}
			mid := (pass + fail) / 2 / 250 * 250 // a round rate
			if mid <= pass || mid >= fail {
				break
			}
			r, err := once(bin, mid, o.sweepDuration, 0)
			if err != nil {
				return 0, 0, false, err
			}
			printRun(o, who, r)
			if r.within(o.target) {
				pass = mid
			} else {
				fail = mid
			}
		}
		return pass, fail, ran, nil
	}
	pass, fail, ran, err := sweep(bin, "")
	if err != nil {
		return err
	}
	if ran {
		reference, refRatio := "previous round: not measured (-ref-rev '')", "-"
		if o.refRev != "" {
			refBin := filepath.Join(work, "ref-bin")
			// A clone without that commit (a shallow one) cannot build it: the row says so
			// and the rest of the benchmark goes on.
			if err := svc.BuildRevision(ctx, o.root, o.refRev, refBin, stack.Binaries...); err != nil {
				logf("previous round's binaries not built: %v", err)
				reference = "previous round (" + o.refRev + "): not built here (a shallow clone?)"
			} else {
				refPass, refFail, _, err := sweep(refBin, "previous round ("+o.refRev+"): ")
				if err != nil {
					return err
				}
				reference = "previous round (" + o.refRev + "), same sweep: " + highest(refPass, refFail)
				if refPass > 0 && pass > 0 {
					refRatio = fmt.Sprintf("%.2f", float64(pass)/float64(refPass))
				}
			}
		}
		fmt.Printf("| pipeline | highest rate with POST → warm cache p99 ≤ %s (swept %s events/s, then up to %d halvings), origin %s, %d warmer(s) | %s | %s | %s |\n",
			spaced(o.target), o.rates, o.bisect, spaced(o.originDelay), o.warmers, highest(pass, fail), reference, refRatio)
	}

	if o.rate > 0 {
		r, err := once(bin, o.rate, o.duration, o.ref)
		if err != nil {
			return err
		}
		printRun(o, "", r)
		if r.refP99 > 0 {
			fmt.Printf("| pipeline | POST → warm cache p99 (as above) vs raw JetStream, %s events/s as %d-event batches × 3 topics | p99 %s | raw JetStream publish → consumer receive: p50 %s, p99 %s | %.1f (e2e p99 / JetStream p99) |\n",
				table.Commas(o.rate), o.batch, fmtMS(r.p99), fmtMS(r.refP50), fmtMS(r.refP99), r.p99/r.refP99)
		}
		fmt.Printf("| pipeline | POST → warm cache p99 vs target | p99 %s | target: ≤ 50 ms at 10,000 events/s, origin 1 ms | %.2f |\n",
			fmtMS(r.p99), r.p99/50)
	}
	return nil
}

// highest describes a sweep's outcome: the highest rate within the target and the lowest
// beyond it (0: none).
func highest(pass, fail int) string {
	h := table.Commas(pass) + " events/s"
	switch {
	case pass == 0:
		return "none of the rates swept"
	case fail == 0:
		return "≥ " + h + " (every rate swept)"
	}
	return h + fmt.Sprintf(" (%s events/s: beyond)", table.Commas(fail))
}

// printRun prints the row of one run; who prefixes the case (the reference's binaries).
func printRun(o options, who string, r *result) {
	label := fmt.Sprintf(who+"POST → warm cache, %s events/s (achieved %s), origin %s, %d warmer(s)", table.Commas(int(r.rate)), table.Commas(int(r.achieved)), spaced(o.originDelay), o.warmers)
	if r.lost > 0 {
		label += fmt.Sprintf(", %d of %d events not stored within %s of the last POST", r.lost, r.measured, spaced(o.drain))
	} else if r.storedRate < 0.95*r.rate {
		label += ", nothing lost"
	}
	if r.storedRate < 0.95*r.rate {
		label += fmt.Sprintf(": the backlog was stored at %s URLs/s", table.Commas(int(r.storedRate)))
	}
	result := fmt.Sprintf("p50 %s, p99 %s, max %s", fmtMS(r.p50), fmtMS(r.p99), fmtMS(r.max))
	fmt.Printf("| pipeline | %s | %s | POST → 204 (same requests): p50 %s, p99 %s | %.1f (e2e p99 / POST p99) |\n",
		label, result, fmtMS(r.postP50), fmtMS(r.postP99), r.p99/r.postP99)
}

// runOnce runs the pipeline once at o.rate for o.duration, in work, from the binaries in bin.
func runOnce(ctx context.Context, o options, bin, work string) (*result, error) {
	logf("run at %d events/s; load average before it: %s", o.rate, loadAverage())
	total := o.warmup + o.duration + o.drain + o.ref + 90*time.Second
	ctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()

	natsPort, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	ns, err := stack.StartNATS(natsPort, filepath.Join(work, "nats"))
	if err != nil {
		return nil, err
	}
	defer ns.Stop()
	redisPort, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	rs, err := stack.StartRedis(redisPort, filepath.Join(work, "redis"), "everysec")
	if err != nil {
		return nil, err
	}
	defer rs.Kill()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	if err := rdb.ConfigSet(ctx, "notify-keyspace-events", "Eh").Err(); err != nil {
		return nil, fmt.Errorf("enable keyspace notifications: %w", err)
	}

	batches := int((o.warmup + o.duration).Seconds() * float64(o.rate) / float64(o.batch))
	warmBatches := int(o.warmup.Seconds() * float64(o.rate) / float64(o.batch))
	tl := newTimeline(batches * o.batch)

	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mark(tl.fetch, idOf(r.URL.Path), time.Now().UnixNano())
		time.Sleep(o.originDelay)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, `{"url":%q,"name":"resource %s"}`, r.URL.Path, r.URL.Path)
	}))
	defer origin.Close()

	// Observers: stores (Redis notifications) and warm requests (core NATS subscription).
	ps := rdb.Subscribe(ctx, "__keyevent@0__:hset")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return nil, fmt.Errorf("subscribe to hset notifications: %w", err)
	}
	go func() {
		for {
			m, err := ps.ReceiveMessage(ctx)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			if u := cache.URLOfKey(namespace, m.Payload); u != "" {
				mark(tl.store, idOf(u), now)
			}
		}
	}()
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	names := stream.Names{Prefix: prefix}
	sub, err := nc.Subscribe(names.Subject(stream.Warm, ""), func(m *nats.Msg) {
		now := time.Now().UnixNano()
		if r, err := cache.ParseWarmRequest(m.Data); err == nil {
			mark(tl.warm, idOf(r.URL), now)
		}
	})
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	defer sub.Unsubscribe()

	procs, ingestURL, err := startServices(ctx, o, bin, work, ns.URL(), rs.URL(0, namespace))
	stopAll := func() {
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(func() { p.Stop(5 * time.Second) })
		}
		wg.Wait()
	}
	defer stopAll()
	if err != nil {
		return nil, err
	}
	logf("NATS %s, Redis %s, origin %s (%v), ingest %s, 1 filter, %d warmer(s), 1 sweeper; %d batches of %d at %d events/s, %d in flight",
		ns.URL(), rs.Addr(), origin.URL, o.originDelay, ingestURL, o.warmers, batches, o.batch, o.rate, o.inflight)

	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Go(func() { sampleBacklog(sampleCtx, js, names, o.warmers) })

	pids := map[string]int{"bench (NATS, origin, load)": os.Getpid()}
	if info, err := rdb.InfoMap(ctx, "server").Result(); err == nil {
		if pid, err := strconv.Atoi(info["Server"]["process_id"]); err == nil {
			pids["redis"] = pid
		}
	}
	for _, p := range procs {
		pids[p.Name] = p.PID()
	}
	busy0, all0 := machineCPU()
	cpu0 := map[string]float64{}
	for name, pid := range pids {
		cpu0[name] = svc.CPUSeconds(pid)
	}
	gen := &generator{o: o, url: ingestURL, base: origin.URL, tl: tl, postLat: make([]int64, batches)}
	loadStart := time.Now()
	var profiling sync.WaitGroup
	if o.profile != "" {
		secs := max(1, int(min(o.duration, time.Duration(o.profileSeconds)*time.Second).Seconds()))
		for _, p := range procs {
			if !strings.HasPrefix(p.Name, "warmer") && !strings.HasPrefix(p.Name, "filter") {
				continue
			}
			profiling.Go(func() {
				time.Sleep(o.warmup) // the measured load
				profile(p, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(o.profile, fmt.Sprintf("%s-%d-cpu.pprof", p.Name, o.rate)))
			})
		}
	}
	if err := gen.run(ctx, batches); err != nil {
		stopSampling()
		return nil, err
	}
	logf("load done in %s (%d POST retries)", time.Since(loadStart).Round(time.Millisecond), gen.retries.Load())

	// Wait for the measured events' stores.
	first, last := warmBatches*o.batch, batches*o.batch
	deadline := time.Now().Add(o.drain)
	for {
		missing := 0
		for id := first; id < last; id++ {
			if tl.store[id].Load() == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cutoff := time.Now().UnixNano() // stores after this count as lost
	stopSampling()
	sampling.Wait()
	cpuWall := time.Since(loadStart)
	var cpuNames []string
	for name := range pids {
		cpuNames = append(cpuNames, name)
	}
	slices.Sort(cpuNames)
	var cpuLine []string
	for _, name := range cpuNames {
		cpuLine = append(cpuLine, fmt.Sprintf("%s %.2f", name, (svc.CPUSeconds(pids[name])-cpu0[name])/cpuWall.Seconds()))
	}
	busy1, all1 := machineCPU()
	if all1 > all0 {
		cpuLine = append(cpuLine, fmt.Sprintf("whole machine %.2f of %d", float64(runtime.NumCPU())*(busy1-busy0)/(all1-all0), runtime.NumCPU()))
	}
	logf("CPU cores used from the first POST to the last store (%s): %s", cpuWall.Round(time.Millisecond), strings.Join(cpuLine, ", "))
	for _, p := range procs {
		if strings.HasPrefix(p.Name, "warmer") || strings.HasPrefix(p.Name, "filter") {
			logf("%s metrics: %s", p.Name, scrape(strings.TrimSuffix(p.Health, "/readyz")+"/metrics"))
		}
	}
	profiling.Wait()
	if o.profile != "" {
		for _, p := range procs {
			if strings.HasPrefix(p.Name, "warmer") || strings.HasPrefix(p.Name, "filter") {
				profile(p, "/debug/pprof/allocs", filepath.Join(o.profile, fmt.Sprintf("%s-%d-allocs.pprof", p.Name, o.rate)))
			}
		}
	}
	stopAll()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Results.
	var e2e, toWarm, warmToFetch, fetchToStore []float64
	var postP, postA int64 = math.MaxInt64, 0
	lost := 0
	for id := first; id < last; id++ {
		p, s := tl.post[id].Load(), tl.store[id].Load()
		if p == 0 {
			return nil, fmt.Errorf("event %d was never posted", id)
		}
		postP, postA = min(postP, p), max(postA, tl.ack[id].Load())
		if s == 0 || s > cutoff {
			lost++
			e2e = append(e2e, math.Inf(1))
			continue
		}
		e2e = append(e2e, ms(s-p))
		w, f := tl.warm[id].Load(), tl.fetch[id].Load()
		if w != 0 && f != 0 {
			toWarm = append(toWarm, ms(w-p))
			warmToFetch = append(warmToFetch, ms(f-w))
			fetchToStore = append(fetchToStore, ms(s-f))
		}
	}
	var post []float64
	for b := warmBatches; b < batches; b++ {
		post = append(post, ms(gen.postLat[b]))
	}
	achieved := float64(last-first) / (time.Duration(postA - postP).Seconds())
	e2eP50, e2eP99, e2eMax := pct(e2e, 0.50), pct(e2e, 0.99), pct(e2e, 1)
	postP99 := pct(post, 0.99)
	logf("stage breakdown over %d stored events (p50 / p99 / max, ms): POST→204 %s; POST→warm request published %s; warm request→origin GET %s; origin GET→stored %s",
		len(toWarm), triple(post), triple(toWarm), triple(warmToFetch), triple(fetchToStore))
	if lost > 0 {
		logf("%d of %d measured events lost (not stored within %v of the last POST)", lost, last-first, o.drain)
	}
	logf("load average after the run: %s", loadAverage())

	r := &result{rate: float64(o.rate), achieved: achieved, p50: e2eP50, p99: e2eP99, max: e2eMax,
		postP50: pct(post, 0.5), postP99: postP99, measured: last - first, lost: lost}
	stored, lastStore := 0, int64(0)
	for id := range tl.store {
		if st := tl.store[id].Load(); st != 0 && st <= cutoff {
			stored++
			lastStore = max(lastStore, st)
		}
	}
	if lastStore > 0 {
		r.storedRate = float64(stored) / time.Duration(lastStore-tl.post[0].Load()).Seconds()
	}
	logf("stored %d events in all, %s events/s from the first POST to the last store", stored, table.Commas(int(r.storedRate)))

	if o.ref > 0 {
		refLat, err := jetStreamReference(ctx, js, o)
		if err != nil {
			return nil, fmt.Errorf("raw JetStream reference: %w", err)
		}
		r.refP50, r.refP99 = pct(refLat, 0.5), pct(refLat, 0.99)
	}
	return r, nil
}

// startServices starts filter, warmers, sweeper and ingest and waits until each answers its
// health check. It returns every process started (also on error) and ingest's POST URL.
func startServices(ctx context.Context, o options, bin, work, natsURL, redisURL string) ([]*stack.Proc, string, error) {
	common := []string{
		"NATS_URL=" + natsURL,
		"DRAIN_PREFIX=" + prefix,
		"DRAIN_LOG_LEVEL=warn",
		"DRAIN_SHUTDOWN_TIMEOUT=5s",
		"ROUTEMASTER_DRAIN_REDIS=" + redisURL,
		"ROUTEMASTER_CACHE_REDIS=" + redisURL,
		"ROUTEMASTER_DRAIN_TOKENS=" + token,
		"DRAIN_CACHE_MODE=warm",
	}
	if o.profile != "" {
		common = append(common, "DRAIN_PPROF=true")
	}
	common, err := appendEnv(common, "-env", o.env)
	if err != nil {
		return nil, "", err
	}
	warmerOnly, err := appendEnv(nil, "-warmer-env", o.warmerEnv)
	if err != nil {
		return nil, "", err
	}
	var mu sync.Mutex
	var procs []*stack.Proc
	var ingestURL string
	for _, name := range stack.Binaries {
		n := 1
		if name == "warmer" {
			n = o.warmers
		}
		for i := range n {
			port, err := stack.FreePort()
			if err != nil {
				return procs, "", err
			}
			addr := "127.0.0.1:" + strconv.Itoa(port)
			env := slices.Clone(common)
			admin := addr
			if name == "ingest" {
				port, err := stack.FreePort()
				if err != nil {
					return procs, "", err
				}
				admin = "127.0.0.1:" + strconv.Itoa(port)
				env = append(env, "DRAIN_INGEST_ADDR="+addr)
				ingestURL = "http://" + addr + "/events"
			}
			env = append(env, "DRAIN_ADMIN_ADDR="+admin)
			if name == "warmer" {
				env = append(env, warmerOnly...)
			}
			pname := fmt.Sprintf("%s-%d", name, i)
			f, err := os.Create(filepath.Join(work, pname+".log"))
			if err != nil {
				return procs, "", err
			}
			var w io.Writer = f
			if o.verbose {
				w = io.MultiWriter(f, &stack.PrefixWriter{W: os.Stderr, Prefix: pname + " ", Mu: &mu})
			}
			// Ingest answers /readyz on its bus port too (so does the previous round's binary,
			// which had no admin port): the bench waits there.
			p := &stack.Proc{Name: pname, Path: filepath.Join(bin, name), Env: env, Health: "http://" + addr + "/readyz", Log: w}
			if err := p.Start(); err != nil {
				return procs, "", err
			}
			procs = append(procs, p)
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = p.WaitHealthy(wctx)
			cancel()
			if err != nil {
				tail, _ := os.ReadFile(f.Name())
				return procs, "", fmt.Errorf("%s: %w\n%s", pname, err, tail[max(0, len(tail)-2000):])
			}
		}
	}
	return procs, ingestURL, nil
}

// profile saves the body of GET path on p's admin address in file; a failure is logged.
func profile(p *stack.Proc, path, file string) {
	url := strings.TrimSuffix(p.Health, "/readyz") + path
	err := svc.Download(url, file)
	if err != nil {
		logf("profile of %s: %v", p.Name, err)
	}
}

// appendEnv appends the NAME=value pairs of the comma-separated list to env.
func appendEnv(env []string, flagName, list string) ([]string, error) {
	if list == "" {
		return env, nil
	}
	for kv := range strings.SplitSeq(list, ",") {
		kv = strings.TrimSpace(kv)
		if !strings.Contains(kv, "=") {
			return nil, fmt.Errorf("%s: %q is not NAME=value", flagName, kv)
		}
		env = append(env, kv)
	}
	return env, nil
}

// machineCPU returns the busy and total jiffies of all CPUs, from /proc/stat.
func machineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// scrape summarises a service's /metrics: the mean of each duration histogram and every
// drain counter, labels summed.
func scrape(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	vals := map[string]float64{}
	var order []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "drain_") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			if strings.HasSuffix(name[:i], "_bucket") {
				continue
			}
			lbl := name[i:]
			name = name[:i]
			if strings.HasPrefix(name, "drain_warmer_") || strings.HasPrefix(name, "drain_filter_messages") {
				name += lbl
			}
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		if _, ok := vals[name]; !ok {
			order = append(order, name)
		}
		vals[name] += v
	}
	var out []string
	for _, name := range order {
		switch {
		case strings.HasSuffix(name, "_sum"):
			base := strings.TrimSuffix(name, "_sum")
			if n := vals[base+"_count"]; n > 0 {
				out = append(out, fmt.Sprintf("%s mean %.1f ms (n=%.0f)", base, 1000*vals[name]/n, n))
			}
		case strings.HasSuffix(name, "_count"):
		default:
			out = append(out, fmt.Sprintf("%s %.0f", name, vals[name]))
		}
	}
	return strings.Join(out, "; ")
}

// generator posts batches at a steady rate.
type generator struct {
	o       options
	url     string
	base    string
	tl      *timeline
	postLat []int64 // per batch: POST start → 2xx, ns
	retries atomic.Int64
}

func (g *generator) body(b int) []byte {
	var buf bytes.Buffer
	buf.WriteByte('[')
	t := time.Now().UnixMilli()
	for i := range g.o.batch {
		id := b*g.o.batch + i
		topic := topics[id%len(topics)]
		typ := "update"
		if id%2 == 0 {
			typ = "create"
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"topic":%q,"type":%q,"url":"%s/%s/%d","t":%d}`, topic, typ, g.base, topic, id, t)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// run sends batches 0..n-1, batch b due at start + b × batch/rate, and returns once each is
// acknowledged with a 2xx. A failed POST is resent after 50 ms, like the bus does.
func (g *generator) run(ctx context.Context, n int) error {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: g.o.inflight, MaxConnsPerHost: g.o.inflight}}
	defer client.CloseIdleConnections()
	interval := time.Duration(float64(time.Second) * float64(g.o.batch) / float64(g.o.rate))
	work := make(chan int)
	errs := make(chan error, g.o.inflight)
	var wg sync.WaitGroup
	for range g.o.inflight {
		wg.Go(func() {
			for b := range work {
				if err := g.post(ctx, client, b); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	start := time.Now()
	var late time.Duration
	for b := 0; b < n && ctx.Err() == nil; b++ {
		due := start.Add(time.Duration(b) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case work <- b:
		case err := <-errs:
			close(work)
			wg.Wait()
			return err
		case <-ctx.Done():
		}
		late = max(late, time.Since(due))
	}
	close(work)
	wg.Wait()
	if late > 100*time.Millisecond {
		logf("the generator fell behind its schedule by up to %s (all %d POSTs in flight)", late.Round(time.Millisecond), g.o.inflight)
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	return ctx.Err()
}

func (g *generator) post(ctx context.Context, client *http.Client, b int) error {
	body := g.body(b)
	start := time.Now().UnixNano()
	for i := range g.o.batch {
		g.tl.post[b*g.o.batch+i].Store(start)
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(token, "x")
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				now := time.Now().UnixNano()
				g.postLat[b] = now - start
				for i := range g.o.batch {
					g.tl.ack[b*g.o.batch+i].Store(now)
				}
				return nil
			}
			err = fmt.Errorf("ingest answered %d", resp.StatusCode)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt >= 20 {
			return fmt.Errorf("batch %d: %w (after %d attempts)", b, err, attempt+1)
		}
		g.retries.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

// sampleBacklog logs the filter's and the warmers' consumer backlogs once a second.
func sampleBacklog(ctx context.Context, js jetstream.JetStream, names stream.Names, warmers int) {
	t0 := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		line := fmt.Sprintf("t=%2.0fs", time.Since(t0).Seconds())
		for _, c := range []struct{ label, stream, durable string }{
			{"filter", names.Stream(stream.Events), names.Durable("filter")},
			{"warm", names.Stream(stream.Warm), names.Durable("warm_routemaster")},
		} {
			cons, err := js.Consumer(ctx, c.stream, c.durable)
			if err != nil {
				continue
			}
			info, err := cons.Info(ctx)
			if err != nil {
				continue
			}
			line += fmt.Sprintf("  %s: delivered %d, pending %d, ack pending %d", c.label, info.Delivered.Consumer, info.NumPending, info.NumAckPending)
		}
		logf("%s", line)
	}
}

// jetStreamReference publishes, at the same batch rate, one message per topic per batch (the
// shape ingest publishes) to a fresh stream, awaiting each batch's PubAcks, and returns the
// latency from each publish to its receipt by a pull consumer, in ms.
func jetStreamReference(ctx context.Context, js jetstream.JetStream, o options) ([]float64, error) {
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "benchref", Subjects: []string{"benchref.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, err
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "benchref", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1000})
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var lat []float64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now().UnixNano()
		sent, _ := strconv.ParseInt(m.Headers().Get("Bench-Sent"), 10, 64)
		_ = m.Ack()
		mu.Lock()
		lat = append(lat, ms(now-sent))
		mu.Unlock()
	}, jetstream.PullMaxMessages(64))
	if err != nil {
		return nil, err
	}
	defer cc.Stop()

	per := o.batch / len(topics)
	event := []byte(`{"topic":"orders","type":"update","url":"http://127.0.0.1:12345/orders/1234567","t":1767225600000}`)
	body := append([]byte{'['}, bytes.Repeat(append(slices.Clone(event), ','), per)...)
	body[len(body)-1] = ']'
	batches := int(o.ref.Seconds() * float64(o.rate) / float64(o.batch))
	interval := time.Duration(float64(time.Second) * float64(o.batch) / float64(o.rate))
	sem := make(chan struct{}, o.inflight)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	start := time.Now()
	sent := 0
	for b := 0; b < batches && ctx.Err() == nil; b++ {
		if d := time.Until(start.Add(time.Duration(b) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var futs []jetstream.PubAckFuture
			for ti, topic := range topics {
				m := nats.NewMsg("benchref." + topic)
				m.Data = body
				m.Header.Set("Bench-Sent", strconv.FormatInt(time.Now().UnixNano(), 10))
				m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("ref-%d-%d", b, ti))
				f, err := js.PublishMsgAsync(m)
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
				futs = append(futs, f)
			}
			for _, f := range futs {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					select {
					case errc <- err:
					default:
					}
				case <-ctx.Done():
				}
			}
		})
		sent += len(topics)
	}
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= sent {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("received %d of %d reference messages", n, sent)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		return nil, errors.New("no reference messages")
	}
	return slices.Clone(lat), nil
}

// loadAverage is the 1, 5 and 15 minute load average of the machine.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// spaced writes a duration with a space before its unit: "1 ms".
func spaced(d time.Duration) string {
	s := d.String()
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return s
	}
	return s[:i] + " " + s[i:]
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// pct returns the q-quantile (nearest rank) of v; it sorts v.
func pct(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[min(max(i, 0), len(v)-1)]
}

func triple(v []float64) string {
	return fmt.Sprintf("%s / %s / %s", fmtMS(pct(v, 0.5)), fmtMS(pct(v, 0.99)), fmtMS(pct(v, 1)))
}

func fmtMS(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "∞ (lost)"
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}
