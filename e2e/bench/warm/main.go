// Command warm benchmarks the warmer. It prints rows of the shared benchmark table:
//
//	cd e2e && go run ./bench/warm            # or: make bench
//	go run ./bench/warm -urls 5000 -procs 1,2 -conc 8 -delay 20ms
//	go run ./bench/warm -procs '' -cpu-urls 50000 -profile /tmp/prof   # the CPU case alone, with profiles
//
// Throughput: URLs fetched and stored per second with 1, 2 and 4 warmer processes over
// pre-published warm requests for distinct URLs, against an origin that takes 20 ms per request,
// next to the ideal rate (processes × concurrency / origin latency). For each process count it
// invalidates and publishes -urls warm requests under a fresh prefix, starts the warmers as
// subprocesses and times from the origin's first request until the warm consumer has nothing
// pending or unacknowledged.
//
// CPU per URL (cpu.go): the warmer's process CPU time (user + system, /proc/<pid>/stat) per URL
// it stored, over -cpu-urls pre-published requests for distinct URLs against an instant origin
// at DRAIN_CONCURRENCY=-cpu-conc, beside a bare loop doing the same work at the same
// concurrency in a process of its own (this program run with -loop: pull, GET on a kept-alive
// connection, the cache's own conditional-store script, ack), measured in turns with the warmer
// (loop, warmer, loop, ... -cpu-rounds warmer runs) in the same run against the same origin,
// Redis and JetStream server, each run over its own URLs and messages of the same shape. The
// bytes each allocates per URL are reported beside. With -profile DIR the first warmer run has
// DRAIN_PPROF=true and DIR receives its CPU profile (-profile-seconds from readiness) and its
// allocation profile, and the first loop run's own (loop-cpu.pprof, loop-allocs.pprof).
//
// It builds the warmer binary (../services/warmer, or -bin to use a built one), starts a private
// embedded JetStream server, a private redis-server (from PATH) and the origins in this process.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/e2e/bench/table"
	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
)

func main() {
	urls := flag.Int("urls", 20000, "distinct changed URLs (warm requests pre-published)")
	delay := flag.Duration("delay", 20*time.Millisecond, "origin latency per request")
	procs := flag.String("procs", "1,2,4", "comma-separated warmer process counts, one case each (empty: none)")
	conc := flag.Int("conc", 8, "DRAIN_CONCURRENCY of each warmer")
	bin := flag.String("bin", "", "warmer binary to run (default: build ../services/warmer)")
	src := flag.String("src", "../services/warmer", "warmer source directory to build when -bin is empty")
	storage := flag.String("storage", "file", "stream storage: file or memory")
	var cc cpuCase
	flag.IntVar(&cc.urls, "cpu-urls", 20000, "URLs of the CPU-per-URL case (0 skips it)")
	flag.IntVar(&cc.conc, "cpu-conc", 32, "DRAIN_CONCURRENCY of the CPU-per-URL case, and the bare loop's")
	flag.IntVar(&cc.rounds, "cpu-rounds", 2, "warmer runs of the CPU-per-URL case, each between two runs of the bare loop")
	flag.StringVar(&cc.profile, "profile", "", "directory for the CPU-per-URL case's profiles (warmer with DRAIN_PPROF=true, and the loop)")
	flag.IntVar(&cc.profileSeconds, "profile-seconds", 5, "length of the warmer's CPU profile, from readiness")
	var lp loopArgs
	flag.BoolVar(&lp.on, "loop", false, "internal: run as the bare loop of the CPU case")
	flag.StringVar(&lp.nats, "loop-nats", "", "internal: the loop's NATS URL")
	flag.StringVar(&lp.redis, "loop-redis", "", "internal: the loop's Redis address")
	flag.StringVar(&lp.prefix, "loop-prefix", "", "internal: the loop's prefix and cache namespace")
	flag.StringVar(&lp.lua, "loop-lua", "", "internal: path of the cache's store script")
	flag.StringVar(&lp.profile, "loop-profile", "", "internal: path prefix of the loop's profiles")
	flag.Parse()
	if lp.on {
		lp.n, lp.conc = cc.urls, cc.conc
		if err := lp.run(); err != nil {
			fmt.Fprintln(os.Stderr, "bench warm loop:", err)
			os.Exit(1)
		}
		return
	}
	cc.storage = *storage
	if err := run(*urls, *delay, *procs, *conc, *bin, *src, *storage, cc); err != nil {
		fmt.Fprintln(os.Stderr, "bench warm:", err)
		os.Exit(1)
	}
}

func run(nURLs int, delay time.Duration, procs string, conc int, bin, src, storage string, cc cpuCase) error {
	sc, err := stack.StartScratch("bench-warm-", true)
	if err != nil {
		return err
	}
	defer sc.Close()
	if bin == "" {
		bin = filepath.Join(sc.Dir, "warmer")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir, cmd.Stderr = src, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build warmer in %s: %w", src, err)
		}
	}
	o, err := startOrigin(delay)
	if err != nil {
		return err
	}
	defer o.srv.Close()

	rates := map[int]float64{}
	var counts []int
	for i, p := range strings.Split(procs, ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return fmt.Errorf("-procs: bad count %q", p)
		}
		rate, err := measure(sc.NATS.URL(), sc.Redis.Addr(), fmt.Sprint("benchwarm", i), bin, o, nURLs, n, conc, storage)
		if err != nil {
			return err
		}
		ideal := float64(n*conc) / delay.Seconds()
		table.Row("warm", fmt.Sprintf("%s URLs, origin %v, %d warmer(s) × c=%d", table.Commas(nURLs), delay, n, conc),
			table.Commas(int(rate))+" URLs/s", fmt.Sprintf("ideal %d×%d/%v", n, conc, delay), table.Commas(int(ideal))+" URLs/s", rate/ideal)
		rates[n] = rate
		counts = append(counts, n)
	}
	if base, ok := rates[1]; ok {
		for _, n := range counts {
			if n == 1 {
				continue
			}
			table.Row("warm", fmt.Sprintf("scaling: %d warmers vs 1", n), fmt.Sprintf("%s URLs/s", table.Commas(int(rates[n]))),
				"1 warmer", table.Commas(int(base))+" URLs/s", rates[n]/base)
		}
	}
	if cc.urls > 0 {
		return cc.run(sc, bin)
	}
	return nil
}

// prepublish does for each URL what the filter does for a changed one: bump its invalidation
// index and publish a warm request carrying the new index, awaiting every PubAck.
func prepublish(ctx context.Context, c *cache.Cache, js jetstream.JetStream, subject string, urls []string) error {
	const batch = 500
	for start := 0; start < len(urls); start += batch {
		part := urls[start:min(start+batch, len(urls))]
		idx, err := c.Invalidate(ctx, part...)
		if err != nil {
			return err
		}
		futures := make([]jetstream.PubAckFuture, 0, len(part))
		for i, u := range part {
			m, err := cache.WarmMsg(subject, cache.WarmRequest{URL: u, Type: cache.WarmUpdate, T: time.Now().UnixMilli(), Index: idx[i]})
			if err != nil {
				return err
			}
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				return err
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			}
		}
	}
	return nil
}

// measure runs one case and returns its throughput in URLs/s.
func measure(natsURL, redisAddr, prefix, bin string, o *origin, nURLs, procs, conc int, storage string) (float64, error) {
	ctx := context.Background()
	env := []string{"NATS_URL=" + natsURL, "ROUTEMASTER_DRAIN_REDIS=redis://" + redisAddr + "/0/" + prefix,
		"DRAIN_PREFIX=" + prefix, "DRAIN_STREAM_STORAGE=" + storage, "DRAIN_LOG_LEVEL=error",
		"DRAIN_CONCURRENCY=" + strconv.Itoa(conc), "DRAIN_MAX_ACK_PENDING=10000",
		"DRAIN_ADMIN_ADDR=127.0.0.1:0", "ROUTEMASTER_CACHE_TIMEOUT=5"}
	cfg, err := config.Load(config.Warmer, env)
	if err != nil {
		return 0, err
	}
	names := cfg.Streams.Names()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := stream.Declare(ctx, js, cfg.Streams); err != nil {
		return 0, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	c, err := cache.New(rdb, cache.Options{Namespace: prefix, Expiry: time.Hour})
	if err != nil {
		return 0, err
	}

	urls := make([]string, nURLs)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/%s/r/%d", o.url, prefix, i)
	}
	if err := prepublish(ctx, c, js, names.Subject(stream.Warm, ""), urls); err != nil {
		return 0, err
	}

	o.first.Store(0)
	var cmds []*exec.Cmd
	defer func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}()
	for range procs {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		cmds = append(cmds, cmd)
	}
	cons, err := waitConsumer(ctx, js, names.Stream(stream.Warm), names.Durable("warm_"+cfg.Warm.QueueName))
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(time.Duration(nURLs)*time.Second/10 + time.Minute)
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= uint64(nURLs) {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d warmer(s) did not finish in time", procs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(time.Unix(0, o.first.Load()))
	// Check the outcome: a sample of the URLs is stored and fresh.
	for i := 0; i < nURLs; i += max(1, nURLs/200) {
		u := fmt.Sprintf("%s/%s/r/%d", o.url, prefix, i)
		if r, err := c.Lookup(ctx, u, cache.Variant{}); err != nil || r == nil {
			return 0, fmt.Errorf("%s not warm after the run (err %v)", u, err)
		}
	}
	for _, cmd := range cmds {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, cmd := range cmds {
		_ = cmd.Wait()
	}
	cmds = nil
	return float64(nURLs) / elapsed.Seconds(), nil
}

func waitConsumer(ctx context.Context, js jetstream.JetStream, streamName, durable string) (jetstream.Consumer, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := js.Consumer(ctx, streamName, durable)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("warm consumer %s never appeared: %w", durable, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// origin answers every GET after delay with a small JSON body, and records its first request.
type origin struct {
	srv   *http.Server
	url   string
	first atomic.Int64 // unix ns of the first request since reset
}

func startOrigin(delay time.Duration) (*origin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &origin{url: "http://" + ln.Addr().String()}
	o.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.first.CompareAndSwap(0, time.Now().UnixNano())
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	})}
	go func() { _ = o.srv.Serve(ln) }()
	return o, nil
}
