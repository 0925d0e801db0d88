package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/e2e/bench/svc"
	"github.com/routemaster-drain/drain/e2e/bench/table"
	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// cpuCase is the CPU-per-URL case: see the package documentation.
type cpuCase struct {
	urls, conc     int
	rounds         int
	storage        string
	profile        string
	profileSeconds int
}

// cost is what one process spent on the URLs it stored.
type cost struct {
	cpu    float64 // seconds of CPU
	alloc  float64 // bytes allocated
	stored int
}

func (c cost) perURL() (cpuMicros, allocKB float64) {
	return 1e6 * c.cpu / float64(c.stored), c.alloc / 1024 / float64(c.stored)
}

func (cc cpuCase) run(sc *stack.Scratch, bin string) error {
	ctx := context.Background()
	o, err := startOrigin(0)
	if err != nil {
		return err
	}
	defer o.srv.Close()
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	lua := filepath.Join(root, "pkg", "cache", "store.lua")
	if cc.profile != "" {
		if err := os.MkdirAll(cc.profile, 0o755); err != nil {
			return err
		}
	}
	// Sets of requests of the same shape, each with its own URLs, run in turn: the loop, the
	// warmer, the loop... (rounds warmer runs between rounds+1 loop runs), as the machine's load
	// drifts during a run; each side's costs are summed over its runs.
	var prefixes []string
	for i := range 2*cc.rounds + 1 {
		kind := "loop"
		if i%2 == 1 {
			kind = "warm"
		}
		prefixes = append(prefixes, fmt.Sprintf("cpu%s%d", kind, i))
	}
	for _, p := range prefixes {
		if err := cc.load(ctx, sc, o, p); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "cpu case: pre-published %d × %d warm requests\n", len(prefixes), cc.urls)
	var loop, warm cost
	for i, p := range prefixes {
		var c cost
		var err error
		if i%2 == 1 {
			c, err = cc.runWarmer(ctx, sc, bin, p, i == 1)
		} else {
			c, err = cc.runLoop(sc, lua, p, i == 0)
		}
		if err != nil {
			return err
		}
		us, kb := c.perURL()
		fmt.Fprintf(os.Stderr, "cpu case: %s: %.2f s CPU, %d URLs stored: %.1f µs and %.1f KB per URL\n", p, c.cpu, c.stored, us, kb)
		sum := &loop
		if i%2 == 1 {
			sum = &warm
		}
		sum.cpu, sum.alloc, sum.stored = sum.cpu+c.cpu, sum.alloc+c.alloc, sum.stored+c.stored
	}
	wUS, wKB := warm.perURL()
	lUS, lKB := loop.perURL()
	label := fmt.Sprintf("CPU per URL stored, %s URLs, instant origin, 1 warmer × c=%d", table.Commas(cc.urls), cc.conc)
	table.Row("warm", label, fmt.Sprintf("%.0f µs", wUS), fmt.Sprintf("bare loop (pull, GET, store script, ack; same run, %d runs between %d of the warmer)", cc.rounds+1, cc.rounds),
		fmt.Sprintf("%.0f µs", lUS), wUS/lUS)
	table.Row("warm", "allocated per URL stored (same case)", fmt.Sprintf("%.1f KB", wKB), "bare loop", fmt.Sprintf("%.1f KB", lKB), wKB/lKB)
	return nil
}

// load pre-publishes cc.urls warm requests for distinct URLs under prefix.
func (cc cpuCase) load(ctx context.Context, sc *stack.Scratch, o *origin, prefix string) error {
	st := stream.StreamOptions{Prefix: prefix, MemoryStorage: cc.storage == "memory"}
	nc, err := nats.Connect(sc.NATS.URL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := stream.Declare(ctx, js, st); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: sc.Redis.Addr()})
	defer rdb.Close()
	c, err := cache.New(rdb, cache.Options{Namespace: prefix, Expiry: time.Hour})
	if err != nil {
		return err
	}
	urls := make([]string, cc.urls)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/%s/r/%d", o.url, prefix, i)
	}
	return prepublish(ctx, c, js, st.Names().Subject(stream.Warm, ""), urls)
}

func (cc cpuCase) env(sc *stack.Scratch, prefix string) []string {
	env := []string{"NATS_URL=" + sc.NATS.URL(), "ROUTEMASTER_DRAIN_REDIS=redis://" + sc.Redis.Addr() + "/0/" + prefix,
		"DRAIN_PREFIX=" + prefix, "DRAIN_STREAM_STORAGE=" + cc.storage, "DRAIN_LOG_LEVEL=error",
		"DRAIN_CONCURRENCY=" + strconv.Itoa(cc.conc), "DRAIN_MAX_ACK_PENDING=10000", "ROUTEMASTER_CACHE_TIMEOUT=5"}
	if cc.profile != "" {
		env = append(env, "DRAIN_PPROF=true")
	}
	return env
}

// runWarmer runs the warmer binary over prefix's requests and returns its cost, counted from
// readiness (its start-up left out) to the last ack, and the URLs it stored meanwhile (from
// its own /metrics).
func (cc cpuCase) runWarmer(ctx context.Context, sc *stack.Scratch, bin, prefix string, profile bool) (cost, error) {
	if !profile {
		cc.profile = ""
	}
	env := cc.env(sc, prefix)
	cfg, err := config.Load(config.Warmer, env)
	if err != nil {
		return cost{}, err
	}
	w, err := svc.Start(ctx, filepath.Dir(bin), filepath.Base(bin), env)
	if err != nil {
		return cost{}, err
	}
	defer w.Close()
	cpu0 := svc.CPUSeconds(w.PID())
	m0, err := scrapeCounters(w.URL("/metrics"))
	if err != nil {
		return cost{}, err
	}
	profDone := make(chan error, 1)
	if cc.profile != "" {
		go func() {
			profDone <- svc.Download(w.URL(fmt.Sprintf("/debug/pprof/profile?seconds=%d", cc.profileSeconds)), filepath.Join(cc.profile, "warmer-cpu.pprof"))
		}()
	}
	nc, err := nats.Connect(sc.NATS.URL())
	if err != nil {
		return cost{}, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	names := cfg.Streams.Names()
	cons, err := waitConsumer(ctx, js, names.Stream(stream.Warm), names.Durable("warm_"+cfg.Warm.QueueName))
	if err != nil {
		return cost{}, err
	}
	deadline := time.Now().Add(time.Duration(cc.urls)*time.Second/100 + time.Minute)
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= uint64(cc.urls) {
			break
		}
		if time.Now().After(deadline) || !w.Running() {
			return cost{}, fmt.Errorf("the warmer did not store %d URLs in time", cc.urls)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cpu1 := svc.CPUSeconds(w.PID())
	m1, err := scrapeCounters(w.URL("/metrics"))
	if err != nil {
		return cost{}, err
	}
	if cc.profile != "" {
		if err := <-profDone; err != nil {
			return cost{}, fmt.Errorf("warmer CPU profile: %w", err)
		}
		if err := svc.Download(w.URL("/debug/pprof/allocs"), filepath.Join(cc.profile, "warmer-allocs.pprof")); err != nil {
			return cost{}, fmt.Errorf("warmer allocation profile: %w", err)
		}
	}
	stored := m1[`drain_warmer_fetches_total{outcome="stored"}`] - m0[`drain_warmer_fetches_total{outcome="stored"}`]
	if stored <= 0 {
		return cost{}, fmt.Errorf("the warmer stored nothing (metrics %v)", m1)
	}
	return cost{cpu: cpu1 - cpu0, alloc: m1["go_memstats_alloc_bytes_total"] - m0["go_memstats_alloc_bytes_total"], stored: int(stored)}, nil
}

// runLoop runs this program with -loop over prefix's requests and returns its cost, counted
// from the moment it is connected and about to pull.
func (cc cpuCase) runLoop(sc *stack.Scratch, lua, prefix string, profile bool) (cost, error) {
	if !profile {
		cc.profile = ""
	}
	self, err := os.Executable()
	if err != nil {
		return cost{}, err
	}
	args := []string{"-loop", "-loop-nats", sc.NATS.URL(), "-loop-redis", sc.Redis.Addr(), "-loop-prefix", prefix,
		"-loop-lua", lua, "-cpu-urls", strconv.Itoa(cc.urls), "-cpu-conc", strconv.Itoa(cc.conc)}
	if cc.profile != "" {
		args = append(args, "-loop-profile", filepath.Join(cc.profile, "loop"))
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return cost{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return cost{}, err
	}
	if err := cmd.Start(); err != nil {
		return cost{}, err
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	next := func(want string) (string, error) {
		if !lines.Scan() {
			return "", fmt.Errorf("the loop ended before saying %q", want)
		}
		rest, ok := strings.CutPrefix(lines.Text(), want)
		if !ok {
			return "", fmt.Errorf("the loop said %q, want %q", lines.Text(), want)
		}
		return rest, nil
	}
	if _, err := next("ready"); err != nil {
		return cost{}, err
	}
	cpu0 := svc.CPUSeconds(cmd.Process.Pid)
	rest, err := next("done ")
	if err != nil {
		return cost{}, err
	}
	cpu1 := svc.CPUSeconds(cmd.Process.Pid)
	var alloc float64
	var stored int
	if _, err := fmt.Sscanf(rest, "stored=%d alloc=%g", &stored, &alloc); err != nil {
		return cost{}, fmt.Errorf("loop: %q: %w", rest, err)
	}
	return cost{cpu: cpu1 - cpu0, alloc: alloc, stored: stored}, nil
}

// scrapeCounters reads every sample of a Prometheus text exposition, by its name with labels.
func scrapeCounters(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}
