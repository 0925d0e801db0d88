// Command ingest benchmarks the ingest service: HTTP batches of 100 events over 3 topics at
// concurrency 1, 8 and 64 against a private embedded JetStream server, next to a raw JetStream
// publish of the same per-topic messages (same Nats-Msg-Id, same concurrency) measured in the
// same run. It prints rows of the shared benchmark table on stdout:
//
//	cd e2e && go run ./bench/ingest            # or: make bench
//	go run ./bench/ingest -duration 10s -conc 1,8,64 -storage memory
//
// It builds the ingest binary (../services/ingest) and runs it as a separate process, configured
// through its environment, against the JetStream server embedded in this process; the load
// generator runs here too (everything shares the machine's cores, as the target requires). The
// last row is the ingest process's peak RSS over the whole run (VmHWM of /proc/<pid>/status),
// which the highest concurrency sets, so it counts ingest alone. With -profile DIR the ingest
// process runs with DRAIN_PPROF=true and DIR receives its CPU profile of each case's measured
// load and its allocation profile at the end.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/e2e/bench/svc"
	"github.com/routemaster-drain/drain/e2e/bench/table"
	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/stream"
)

const token = "bench-token"

var topics = []string{"orders", "riders", "restaurants"}

func main() {
	duration := flag.Duration("duration", 5*time.Second, "measuring time per case")
	warmup := flag.Duration("warmup", time.Second, "unmeasured time before each case")
	concFlag := flag.String("conc", "1,8,64", "comma-separated concurrencies")
	events := flag.Int("events", 100, "events per batch")
	storage := flag.String("storage", "file", "stream storage: file or memory")
	noRaw := flag.Bool("noraw", false, "skip the raw publish reference (its columns then read \"skipped\")")
	profile := flag.String("profile", "", "directory for the ingest process's CPU profile of each case (DRAIN_PPROF=true) and its allocation profile at the end")
	bin := flag.String("bin", "", "directory holding the ingest binary to measure (default: build it from this repository)")
	flag.Parse()
	if err := run(*duration, *warmup, *concFlag, *events, *storage, *noRaw, *profile, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench ingest:", err)
		os.Exit(1)
	}
}

func run(duration, warmup time.Duration, concFlag string, nEvents int, storage string, noRaw bool, profile, bin string) error {
	var concs []int
	for _, s := range strings.Split(concFlag, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			return fmt.Errorf("-conc: bad concurrency %q", s)
		}
		concs = append(concs, c)
	}
	sc, err := stack.StartScratch("bench-ingest-", false)
	if err != nil {
		return err
	}
	defer sc.Close()
	natsURL := sc.NATS.URL()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dir := bin
	if dir == "" {
		dir = sc.Dir
		if err := svc.Build(ctx, dir, "ingest"); err != nil {
			return err
		}
	}
	// ingest declares the streams at start-up and answers /readyz once they exist.
	env := []string{"ROUTEMASTER_DRAIN_TOKENS=" + token, "NATS_URL=" + natsURL,
		"DRAIN_PREFIX=bench", "DRAIN_STREAM_STORAGE=" + storage, "DRAIN_INGEST_MAX_INFLIGHT=1024", "DRAIN_LOG_LEVEL=error"}
	if profile != "" {
		if err := os.MkdirAll(profile, 0o755); err != nil {
			return err
		}
		env = append(env, "DRAIN_PPROF=true")
	}
	ing, err := svc.Start(ctx, dir, "ingest", env)
	if err != nil {
		return err
	}
	defer ing.Close()
	ingestURL := ing.URL("/events")

	// The raw reference publishes from its own connection, as a client of the same server; the
	// stream is purged through it between cases.
	rawNC, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer rawNC.Close()
	rawJS, err := jetstream.New(rawNC)
	if err != nil {
		return err
	}
	names := stream.Names{Prefix: "bench"}
	purge := func() {
		s, err := rawJS.Stream(ctx, names.Stream(stream.Events))
		if err == nil {
			_ = s.Purge(ctx)
		}
	}

	var run atomic.Int64 // makes every batch of the whole run unique
	for _, c := range concs {
		var raw result
		if !noRaw {
			purge()
			raw = measure(c, warmup, duration, nEvents, func(w *worker) error { return w.publishRaw(rawJS, names) }, &run)
		}
		purge()
		profiled := make(chan error, 1)
		if profile != "" {
			go func() {
				time.Sleep(warmup)
				secs := max(1, int(duration.Seconds()))
				profiled <- svc.Download("http://"+ing.Admin+fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(profile, fmt.Sprintf("ingest-c%d-cpu.pprof", c)))
			}()
		} else {
			profiled <- nil
		}
		res := measure(c, warmup, duration, nEvents, func(w *worker) error { return w.post(ingestURL) }, &run)
		if err := <-profiled; err != nil {
			return fmt.Errorf("ingest CPU profile: %w", err)
		}
		if !ing.Running() {
			return fmt.Errorf("the ingest process exited during the c=%d case", c)
		}
		label := fmt.Sprintf("%d-event batches, %d topics, c=%d", nEvents, len(topics), c)
		ref := func(v string) string {
			if noRaw {
				return "skipped"
			}
			return v
		}
		ratio := func(a, b float64) float64 {
			if noRaw || b == 0 {
				return 0
			}
			return a / b
		}
		table.Row("ingest", label, table.Rate(res.rate), "raw JetStream publish", ref(table.Rate(raw.rate)), ratio(res.rate, raw.rate))
		table.Row("ingest", label+", p50 latency", fmtMs(res.p50), "raw JetStream publish", ref(fmtMs(raw.p50)), ratio(res.p50.Seconds(), raw.p50.Seconds()))
		table.Row("ingest", label+", p99 latency", fmtMs(res.p99), "raw JetStream publish", ref(fmtMs(raw.p99)), ratio(res.p99.Seconds(), raw.p99.Seconds()))
		if res.errors+raw.errors > 0 {
			fmt.Fprintf(os.Stderr, "c=%d: %d ingest errors (first: %v), %d raw errors (first: %v)\n", c, res.errors, res.firstErr, raw.errors, raw.firstErr)
		}
	}
	if profile != "" {
		if err := svc.Download("http://"+ing.Admin+"/debug/pprof/allocs", filepath.Join(profile, "ingest-allocs.pprof")); err != nil {
			return fmt.Errorf("ingest allocation profile: %w", err)
		}
	}
	hwm := vmHWM(strconv.Itoa(ing.PID()))
	table.Row("ingest", fmt.Sprintf("ingest process peak RSS (VmHWM), c up to %d", slices.Max(concs)), hwm, "target", "64 MiB", parseMiB(hwm)/64)
	fmt.Fprintf(os.Stderr, "peak RSS of the benchmark process (nats-server + load generator): %s\n", vmHWM("self"))
	return nil
}

// vmHWM returns the peak resident set size of a process ("self" or a pid), e.g. "31.2 MiB".
func vmHWM(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "n/a"
}

func parseMiB(s string) float64 {
	f, _ := strconv.ParseFloat(strings.TrimSuffix(s, " MiB"), 64)
	return f
}

type result struct {
	rate     float64 // events/s
	p50, p99 time.Duration
	errors   int64
	firstErr error
}

// worker is one load-generating client.
type worker struct {
	id      int
	nEvents int
	run     *atomic.Int64
	client  *http.Client
	body    []byte
	groups  [][]byte // per-topic JSON arrays of the current batch
	lat     []time.Duration
}

// next builds a unique batch: nEvents events spread round-robin over the topics, as the bus
// would send them (compact JSON), and the per-topic messages ingest must publish for it.
func (w *worker) next() {
	n := w.run.Add(1)
	w.body = append(w.body[:0], '[')
	if w.groups == nil {
		w.groups = make([][]byte, len(topics))
	}
	for i := range w.groups {
		w.groups[i] = append(w.groups[i][:0], '[')
	}
	for i := range w.nEvents {
		ti := i % len(topics)
		start := len(w.body)
		if i > 0 {
			w.body = append(w.body, ',')
			start++
		}
		w.body = append(w.body, `{"topic":"`...)
		w.body = append(w.body, topics[ti]...)
		w.body = append(w.body, `","type":"update","url":"https://`...)
		w.body = append(w.body, topics[ti]...)
		w.body = append(w.body, `.example.com/api/`...)
		w.body = append(w.body, topics[ti]...)
		w.body = append(w.body, '/')
		w.body = strconv.AppendInt(w.body, n, 10)
		w.body = append(w.body, '-')
		w.body = strconv.AppendInt(w.body, int64(i), 10)
		w.body = append(w.body, `","t":`...)
		w.body = strconv.AppendInt(w.body, 1559567869000+n, 10)
		w.body = append(w.body, '}')
		if len(w.groups[ti]) > 1 {
			w.groups[ti] = append(w.groups[ti], ',')
		}
		w.groups[ti] = append(w.groups[ti], w.body[start:]...)
	}
	w.body = append(w.body, ']')
	for i := range w.groups {
		w.groups[i] = append(w.groups[i], ']')
	}
}

func (w *worker) post(url string) error {
	w.next()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(w.body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Basic "+basicToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

var basicToken = base64.StdEncoding.EncodeToString([]byte(token + ":x"))

// publishRaw publishes the batch's per-topic messages concurrently (async) with their
// content-derived Nats-Msg-Id and waits for every PubAck: what ingest does, minus HTTP and
// parsing.
func (w *worker) publishRaw(js jetstream.JetStream, names stream.Names) error {
	w.next()
	futures := make([]jetstream.PubAckFuture, 0, len(topics))
	for i, g := range w.groups {
		subj := names.Subject(stream.Events, topics[i])
		m := &nats.Msg{Subject: subj, Data: g, Header: nats.Header{jetstream.MsgIDHeader: []string{stream.MsgID(subj, g)}}}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	timeout := time.After(5 * time.Second)
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-timeout:
			return fmt.Errorf("no PubAck within 5s")
		}
	}
	return nil
}

// measure runs c workers calling op in a loop: warmup unmeasured, then duration measured.
func measure(c int, warmup, duration time.Duration, nEvents int, op func(*worker) error, run *atomic.Int64) result {
	// 64 KiB write buffers: a batch goes out in one write, as libcurl (the bus) sends it.
	transport := &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, MaxConnsPerHost: c, DisableCompression: true,
		WriteBufferSize: 64 << 10}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var measuring atomic.Bool
	var stop atomic.Bool
	var ok, errs atomic.Int64
	var firstErr atomic.Value
	workers := make([]*worker, c)
	var wg sync.WaitGroup
	for i := range c {
		w := &worker{id: i, nEvents: nEvents, run: run, client: client}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				t0 := time.Now()
				err := op(w)
				d := time.Since(t0)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err)
					}
					continue
				}
				ok.Add(1)
				w.lat = append(w.lat, d)
			}
		}()
	}
	time.Sleep(warmup)
	measuring.Store(true)
	t0 := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(t0)
	stop.Store(true)
	wg.Wait()
	var lat []time.Duration
	for _, w := range workers {
		lat = append(lat, w.lat...)
	}
	slices.Sort(lat)
	r := result{rate: float64(ok.Load()) * float64(nEvents) / elapsed.Seconds(), errors: errs.Load()}
	if e, _ := firstErr.Load().(error); e != nil {
		r.firstErr = e
	}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)*50/100]
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}

func fmtMs(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
