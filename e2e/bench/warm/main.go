// Command warm benchmarks the warmer: warm throughput (URLs fetched and stored per second)
// with 1, 2 and 4 warmer processes over pre-published warm requests for distinct URLs, against
// an origin that takes 20 ms per request, next to the ideal rate (processes × concurrency /
// origin latency). It prints rows of the shared benchmark table:
//
//	cd e2e && go run ./bench/warm            # or: make bench
//	go run ./bench/warm -urls 5000 -procs 1,2 -conc 8 -delay 20ms
//
// It builds the warmer binary (../services/warmer, or -bin to use a built one), starts a private
// embedded JetStream server, a private redis-server (from PATH) and the origin in this process,
// then for each process count: invalidates and publishes -urls warm requests under a fresh
// prefix, starts the warmers as subprocesses and times from the origin's first request until
// the warm consumer has nothing pending or unacknowledged.
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
	procs := flag.String("procs", "1,2,4", "comma-separated warmer process counts, one case each")
	conc := flag.Int("conc", 8, "DRAIN_CONCURRENCY of each warmer")
	bin := flag.String("bin", "", "warmer binary to run (default: build ../services/warmer)")
	src := flag.String("src", "../services/warmer", "warmer source directory to build when -bin is empty")
	storage := flag.String("storage", "file", "stream storage: file or memory")
	flag.Parse()
	if err := run(*urls, *delay, *procs, *conc, *bin, *src, *storage); err != nil {
		fmt.Fprintln(os.Stderr, "bench warm:", err)
		os.Exit(1)
	}
}

func run(nURLs int, delay time.Duration, procs string, conc int, bin, src, storage string) error {
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

	// What the filter does for each changed URL: bump the index, publish a warm request.
	subject := names.Subject(stream.Warm, "")
	const batch = 500
	for start := 0; start < nURLs; start += batch {
		urls := make([]string, 0, batch)
		for i := start; i < min(start+batch, nURLs); i++ {
			urls = append(urls, fmt.Sprintf("%s/%s/r/%d", o.url, prefix, i))
		}
		idx, err := c.Invalidate(ctx, urls...)
		if err != nil {
			return 0, err
		}
		futures := make([]jetstream.PubAckFuture, 0, len(urls))
		for i, u := range urls {
			m, err := cache.WarmMsg(subject, cache.WarmRequest{URL: u, Type: cache.WarmUpdate, T: time.Now().UnixMilli(), Index: idx[i]})
			if err != nil {
				return 0, err
			}
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				return 0, err
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return 0, err
			}
		}
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
