package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Options size a chaos run.
type Options struct {
	Bin      string // directory holding the ingest, filter, warmer and sweeper binaries
	Work     string // scratch directory for stores and logs
	Events   int
	URLs     int
	Seed     uint64
	Rate     int           // events per second the bus offers
	InFlight int           // bus POSTs at once
	Timeout  time.Duration // whole run, settle included
	// KillEvery is the mean time between two SIGKILLs of a random service process.
	KillEvery time.Duration
	// Replicas of each service (ingest, filter, warmer, sweeper).
	Replicas int
	// KillOnly names the services whose processes are SIGKILLed (default: all four); victims
	// are taken in turn from these services, a random replica each time.
	KillOnly []string
	// CacheMode is the filter's DRAIN_CACHE_MODE: "warm" (default, all four services) or
	// "off" (the Mapping drain: no warmer, no cache check).
	CacheMode     string
	OriginLatency time.Duration
	// RedisOutage is how long redis-server stays down when it is SIGKILLed (default 500ms).
	// Filters and warmers pause meanwhile; an outage of any length must cost no dead letter.
	RedisOutage time.Duration
	// MaxDeliver is the services' DRAIN_MAX_DELIVER (default 100).
	MaxDeliver int
	// OriginFailEvery, when above 0, makes every OriginFailEvery-th origin request answer 503
	// (Origin.FailEvery).
	OriginFailEvery int64
	Log             io.Writer
}

// Summary is what a run did and found.
type Summary struct {
	Plan  *Plan
	Bus   BusStats
	Kills map[string]int
	NATS  int // NATS restarts
	Redis int // Redis restarts
	// RedisDown is how long Redis stayed down at its restart, and MaxDeliver the services'
	// DRAIN_MAX_DELIVER.
	RedisDown  time.Duration
	MaxDeliver int
	Settled    time.Duration
	Report     Report
	Origin     int64 // origin requests served
	Failed     int64 // of which answered 503 (Options.OriginFailEvery)
}

// String prints the summary.
func (s Summary) String() string {
	return fmt.Sprintf("chaos: %d events (%d duplicates) over %d URLs in %d batches\n  bus: %s\n  SIGKILLs: %v; NATS restarts: %d; Redis restarts: %d (down %s each, DRAIN_MAX_DELIVER=%d); origin fetches: %d (%d answered 503); settled %s after the last batch\n%s",
		s.Plan.Events, s.Plan.Dups, len(s.Plan.URLs), len(s.Plan.Batches), s.Bus, s.Kills, s.NATS, s.Redis, s.RedisDown, s.MaxDeliver, s.Origin, s.Failed, s.Settled.Round(time.Millisecond), s.Report)
}

// Run starts the servers and services, delivers a plan while killing processes, waits for the
// drain to settle and verifies it.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if o.Replicas <= 0 {
		o.Replicas = 2
	}
	if o.KillEvery <= 0 {
		o.KillEvery = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.CacheMode == "" {
		o.CacheMode = "warm"
	}
	if o.RedisOutage <= 0 {
		o.RedisOutage = 500 * time.Millisecond
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 100
	}
	services := stack.Binaries
	if o.CacheMode == "off" {
		services = slices.DeleteFunc(slices.Clone(services), func(s string) bool { return s == "warmer" })
	}
	if len(o.KillOnly) == 0 {
		o.KillOnly = services
	}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, "chaos: "+format+"\n", args...) }
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	natsPort, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	redisPort, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	ns, err := stack.StartNATS(natsPort, filepath.Join(o.Work, "nats"))
	if err != nil {
		return nil, err
	}
	defer ns.Stop()
	rs, err := stack.StartRedis(redisPort, filepath.Join(o.Work, "redis"), "always")
	if err != nil {
		return nil, err
	}
	defer rs.Kill()

	plan := NewPlan(o.Seed, o.Events, o.URLs, "") // base filled in once the origin listens
	origin := NewOrigin(plan, o.OriginLatency)
	origin.FailEvery = o.OriginFailEvery
	srv := httptest.NewServer(origin)
	defer srv.Close()
	*plan = *NewPlan(o.Seed, o.Events, o.URLs, srv.URL)

	prefix, namespace := "chaos", "chaos"
	common := []string{
		"NATS_URL=" + ns.URL(),
		"DRAIN_PREFIX=" + prefix,
		"DRAIN_LOG_LEVEL=warn",
		"DRAIN_SHUTDOWN_TIMEOUT=5s",
		"ROUTEMASTER_DRAIN_REDIS=" + rs.URL(0, namespace),
		"ROUTEMASTER_CACHE_REDIS=" + rs.URL(0, namespace),
		"ROUTEMASTER_DRAIN_TOKENS=chaos",
		"DRAIN_CACHE_MODE=" + o.CacheMode,
		"DRAIN_ACK_WAIT=5s",
		"DRAIN_RETRY_BACKOFF=100ms",
		"DRAIN_RETRY_BACKOFF_MAX=2s",
		"DRAIN_MAX_DELIVER=" + strconv.Itoa(o.MaxDeliver),
		"DRAIN_CONCURRENCY=16",
		"DRAIN_INGEST_PUBLISH_TIMEOUT=2s",
		"DRAIN_INGEST_RETRY_AFTER=1",
		"ROUTEMASTER_CACHE_TIMEOUT=2",
		"DRAIN_SWEEP_INTERVAL=1s",
		"DRAIN_SWEEP_LEASE=5s",
		"DRAIN_SWEEP_PUBLISH=true",
	}
	var procs []*stack.Proc
	var targets []string
	for _, name := range services {
		for i := range o.Replicas {
			port, err := stack.FreePort()
			if err != nil {
				return nil, err
			}
			addr := "127.0.0.1:" + strconv.Itoa(port)
			env := append([]string(nil), common...)
			admin := addr
			if name == "ingest" {
				port, err := stack.FreePort()
				if err != nil {
					return nil, err
				}
				admin = "127.0.0.1:" + strconv.Itoa(port)
				env = append(env, "DRAIN_INGEST_ADDR="+addr)
				targets = append(targets, "http://"+addr+"/events")
			}
			env = append(env, "DRAIN_ADMIN_ADDR="+admin)
			logFile, err := os.OpenFile(filepath.Join(o.Work, fmt.Sprintf("%s-%d.log", name, i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, err
			}
			defer logFile.Close()
			p := &stack.Proc{Name: fmt.Sprintf("%s-%d", name, i), Path: filepath.Join(o.Bin, name), Env: env,
				Health: "http://" + admin + "/readyz", Log: logFile} // ready: working (ingest: its bus port open)
			procs = append(procs, p)
		}
	}
	defer func() {
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Add(1)
			go func() { defer wg.Done(); p.Stop(10 * time.Second) }()
		}
		wg.Wait()
	}()
	for _, p := range procs {
		if err := p.Start(); err != nil {
			return nil, err
		}
		if err := waitUp(ctx, p); err != nil {
			return nil, fmt.Errorf("%w (log: %s)", err, filepath.Join(o.Work, p.Name+".log"))
		}
	}
	logf("%d service processes up; NATS %s, Redis %s (AOF, fsync always), origin %s", len(procs), ns.URL(), rs.Addr(), srv.URL)

	sum := &Summary{Plan: plan, Kills: map[string]int{}, RedisDown: o.RedisOutage, MaxDeliver: o.MaxDeliver}
	// redisOutage keeps redis-server down for o.RedisOutage (a shorter wait if the run's time
	// is up) and starts it again from its AOF.
	redisOutage := func() error {
		rs.Kill()
		select {
		case <-ctx.Done():
		case <-time.After(o.RedisOutage):
		}
		return rs.Start()
	}
	bus := &Bus{Targets: targets, Token: "chaos", InFlight: o.InFlight, Rate: o.Rate, Origin: origin}
	busDone := make(chan BusStats, 1)
	go func() { busDone <- bus.Deliver(ctx, plan.Batches) }()

	// Chaos until the bus is done and Redis is back: random SIGKILLs, NATS restarted once a
	// third of the way through, Redis killed two thirds through and started again
	// o.RedisOutage later, the SIGKILLs going on meanwhile (so messages held through the
	// outage move between processes).
	rng := rand.New(rand.NewPCG(o.Seed, 7))
	var stats BusStats
	chaosCtx, stopChaos := context.WithCancel(ctx)
	var chaosWG sync.WaitGroup
	chaosWG.Add(1)
	go func() {
		defer chaosWG.Done()
		total := len(plan.Batches)
		kills := 0
		var redisBack time.Time // while Redis is down: when it comes back
		for {
			wait := o.KillEvery/2 + time.Duration(rng.Int64N(int64(o.KillEvery)))
			stop := chaosCtx.Done()
			if !redisBack.IsZero() {
				wait = max(0, min(wait, time.Until(redisBack)))
				stop = ctx.Done()
			}
			select {
			case <-stop:
				if !redisBack.IsZero() { // the run's time is up
					_ = rs.Start()
				}
				return
			case <-time.After(wait):
			}
			if !redisBack.IsZero() && !time.Now().Before(redisBack) {
				logf("starting redis-server again from its AOF after %s down", o.RedisOutage)
				if err := rs.Start(); err != nil {
					logf("Redis restart failed: %v", err)
				}
				redisBack = time.Time{}
				continue
			}
			acked := bus.Acked()
			switch {
			case sum.NATS == 0 && acked >= total/3:
				logf("restarting NATS (%d/%d batches acknowledged)", acked, total)
				ns.Stop()
				time.Sleep(500 * time.Millisecond)
				if err := ns.Start(); err != nil {
					logf("NATS restart failed: %v", err)
				}
				sum.NATS++
			case sum.Redis == 0 && acked >= 2*total/3:
				logf("SIGKILL redis-server for %s (%d/%d batches acknowledged)", o.RedisOutage, acked, total)
				rs.Kill()
				redisBack = time.Now().Add(o.RedisOutage)
				sum.Redis++
			default:
				victim := o.KillOnly[kills%len(o.KillOnly)]
				kills++
				var pool []*stack.Proc
				for _, p := range procs {
					if strings.HasPrefix(p.Name, victim+"-") {
						pool = append(pool, p)
					}
				}
				if len(pool) == 0 {
					continue
				}
				p := pool[rng.IntN(len(pool))]
				logf("SIGKILL %s (pid %d)", p.Name, p.PID())
				p.Kill()
				sum.Kills[p.Name[:len(p.Name)-2]]++
				time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
				if err := p.Start(); err != nil {
					logf("restart %s: %v", p.Name, err)
				}
			}
		}
	}()
	stats = <-busDone
	logf("bus done: %s", stats)
	stopChaos()
	chaosWG.Wait()
	sum.Bus = stats
	// NATS and Redis restarts are promised even on a short run.
	if sum.NATS == 0 {
		logf("restarting NATS after the last batch")
		ns.Stop()
		if err := ns.Start(); err != nil {
			return nil, err
		}
		sum.NATS++
	}
	if sum.Redis == 0 {
		logf("SIGKILL redis-server after the last batch, restart it in %s", o.RedisOutage)
		if err := redisOutage(); err != nil {
			return nil, err
		}
		sum.Redis++
	}
	for _, p := range procs {
		if !p.Running() {
			if err := p.Start(); err != nil {
				return nil, err
			}
		}
		if err := waitUp(ctx, p); err != nil {
			return nil, err
		}
	}

	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	target := Target{Redis: rdb, Namespace: namespace, JS: js, Names: stream.Names{Prefix: prefix}, Origin: origin, NoCache: o.CacheMode == "off",
		Interruptions: FilterInterruptions(sum)}

	// Settle: poll until every check passes or the run's time is up.
	settleStart := time.Now()
	lastNote := settleStart
	for {
		vctx, vcancel := context.WithTimeout(context.Background(), time.Minute)
		sum.Report = Verify(vctx, plan, stats, target)
		vcancel()
		if sum.Report.OK() || ctx.Err() != nil {
			break
		}
		if time.Since(lastNote) > 15*time.Second {
			lastNote = time.Now()
			for _, c := range sum.Report.Results {
				if !c.OK {
					logf("settling %s: %s: %s", time.Since(settleStart).Round(time.Second), c.Name, c.Detail)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	sum.Settled = time.Since(settleStart)
	sum.Origin = origin.Requests.Load()
	sum.Failed = origin.Failed.Load()
	return sum, nil
}

func waitUp(ctx context.Context, p *stack.Proc) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.WaitHealthy(wctx)
}
