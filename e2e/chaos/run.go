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

	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/dirty"
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
	// Cluster runs the drain on a 3-node NATS cluster with R3 streams and a Redis Cluster of 3
	// masters with one replica each, with DRAIN_REDIS_WAIT_REPLICAS=1. Instead of restarting
	// NATS and Redis, the run SIGKILLs the events stream's leader and another NATS node, and
	// two Redis masters (each restarted once its replica took over; it rejoins as a replica),
	// and measures how soon each stage moves again after each promotion (Summary.Resumed).
	Cluster bool
	Log     io.Writer
}

// Summary is what a run did and found.
type Summary struct {
	Plan  *Plan
	Bus   BusStats
	Kills map[string]int
	NATS  int // NATS restarts (Cluster: NATS node SIGKILLs)
	Redis int // Redis restarts (Cluster: Redis master SIGKILLs)
	// Promoted is, per Redis master kill (Cluster), how long its replica took to be promoted.
	Promoted []time.Duration
	// Resumed is, per stage (filter, warmer, sweeper), the longest time between a promotion
	// and the stage's next progress (Cluster); ResumeFailed names the stages that did not
	// move within a minute of one.
	Resumed      map[string]time.Duration
	ResumeFailed []string
	Settled      time.Duration
	Report       Report
	Origin       int64 // origin requests served
}

// String prints the summary.
func (s Summary) String() string {
	infra := fmt.Sprintf("NATS restarts: %d; Redis restarts: %d", s.NATS, s.Redis)
	if s.Resumed != nil {
		infra = fmt.Sprintf("NATS node SIGKILLs: %d; Redis master SIGKILLs: %d, replicas promoted after %v; longest stage resume after a promotion: %v",
			s.NATS, s.Redis, s.Promoted, s.Resumed)
		if len(s.ResumeFailed) > 0 {
			infra += fmt.Sprintf(" (NOT resumed within a minute: %v)", s.ResumeFailed)
		}
	}
	return fmt.Sprintf("chaos: %d events (%d duplicates) over %d URLs in %d batches\n  bus: %s\n  SIGKILLs: %v; %s; origin fetches: %d; settled %s after the last batch\n%s",
		s.Plan.Events, s.Plan.Dups, len(s.Plan.URLs), len(s.Plan.Batches), s.Bus, s.Kills, infra, s.Origin, s.Settled.Round(time.Millisecond), s.Report)
}

// Run starts the servers and services, delivers a plan while killing processes, waits for the
// drain to settle and verifies it.
func Run(ctx context.Context, o Options) (_ *Summary, err error) {
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

	prefix, namespace := "chaos", "chaos"
	var in infra
	if o.Cluster {
		in, err = startClusters(namespace, logf)
	} else {
		in, err = startSingle(o.Work, namespace, logf)
	}
	if err != nil {
		return nil, err
	}
	defer in.close()

	plan := NewPlan(o.Seed, o.Events, o.URLs, "") // base filled in once the origin listens
	origin := NewOrigin(plan, o.OriginLatency)
	srv := httptest.NewServer(origin)
	defer srv.Close()
	*plan = *NewPlan(o.Seed, o.Events, o.URLs, srv.URL)

	common := []string{
		"NATS_URL=" + in.natsURL(),
		"DRAIN_PREFIX=" + prefix,
		"DRAIN_LOG_LEVEL=warn",
		"DRAIN_SHUTDOWN_TIMEOUT=5s",
		"ROUTEMASTER_DRAIN_REDIS=" + in.redisURL(),
		"ROUTEMASTER_CACHE_REDIS=" + in.redisURL(),
		"ROUTEMASTER_DRAIN_TOKENS=chaos",
		"DRAIN_CACHE_MODE=" + o.CacheMode,
		"DRAIN_ACK_WAIT=5s",
		"DRAIN_RETRY_BACKOFF=100ms",
		"DRAIN_RETRY_BACKOFF_MAX=2s",
		"DRAIN_MAX_DELIVER=100",
		"DRAIN_CONCURRENCY=16",
		"DRAIN_INGEST_PUBLISH_TIMEOUT=2s",
		"DRAIN_INGEST_RETRY_AFTER=1",
		"ROUTEMASTER_CACHE_TIMEOUT=2",
		"DRAIN_SWEEP_INTERVAL=1s",
		"DRAIN_SWEEP_LEASE=5s",
		"DRAIN_SWEEP_PUBLISH=true",
	}
	common = append(common, in.env()...)
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
	logf("%d service processes up; %s, origin %s", len(procs), in, srv.URL)

	sum := &Summary{Plan: plan, Kills: map[string]int{}}
	if o.Cluster {
		sum.Resumed = map[string]time.Duration{}
	}
	nc, err := nats.Connect(in.natsURL(), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	names := stream.Names{Prefix: prefix}
	rdb := in.client()
	defer rdb.Close()
	dirtyMap, err := dirty.New(rdb, dirty.Options{Namespace: namespace})
	if err != nil {
		return nil, err
	}
	bus := &Bus{Targets: targets, Token: "chaos", InFlight: o.InFlight, Rate: o.Rate, Origin: origin}
	busDone := make(chan BusStats, 1)
	go func() { busDone <- bus.Deliver(ctx, plan.Batches) }()

	// The NATS and Redis failures, in order, each when the bus has delivered at/12 of the
	// batches.
	failures := []struct {
		what string
		at   int
	}{{"NATS", 4}, {"Redis", 8}}
	if o.Cluster {
		failures = []struct {
			what string
			at   int
		}{{"NATS", 3}, {"Redis", 6}, {"NATS", 8}, {"Redis", 10}}
	}
	next := 0
	fail := func(what string) {
		if what == "NATS" {
			in.failNATS(sum.NATS, names.Stream(stream.Events))
			sum.NATS++
			return
		}
		sum.Redis++
		promoted, at, err := in.failRedis(sum.Redis - 1)
		if err != nil {
			logf("Redis failure: %v", err)
			return
		}
		if o.Cluster {
			sum.Promoted = append(sum.Promoted, promoted.Round(time.Millisecond))
			measureResume(ctx, js, names, dirtyMap, o.CacheMode != "off", at, sum, logf)
		}
	}
	// Chaos until the bus is done: random SIGKILLs, NATS restarted once a third of the way
	// through, Redis once two thirds through (Cluster: NATS nodes killed a quarter and two
	// thirds through, Redis masters half and five sixths through).
	rng := rand.New(rand.NewPCG(o.Seed, 7))
	var stats BusStats
	chaosCtx, stopChaos := context.WithCancel(ctx)
	var chaosWG sync.WaitGroup
	chaosWG.Add(1)
	go func() {
		defer chaosWG.Done()
		total := len(plan.Batches)
		kills := 0
		for chaosCtx.Err() == nil {
			wait := o.KillEvery/2 + time.Duration(rng.Int64N(int64(o.KillEvery)))
			select {
			case <-chaosCtx.Done():
				return
			case <-time.After(wait):
			}
			acked := bus.Acked()
			switch {
			case next < len(failures) && acked >= failures[next].at*total/12:
				logf("%s failure (%d/%d batches acknowledged)", failures[next].what, acked, total)
				fail(failures[next].what)
				next++
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
	stopChaos()
	chaosWG.Wait()
	sum.Bus = stats
	logf("bus done: %s", stats)
	// The NATS and Redis failures are promised even on a short run: those the bus did not
	// live to see happen now.
	for ; next < len(failures); next++ {
		logf("%s failure after the last batch", failures[next].what)
		fail(failures[next].what)
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

	target := Target{Redis: rdb, Namespace: namespace, JS: js, Names: names, Origin: origin, NoCache: o.CacheMode == "off",
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
	return sum, nil
}

func waitUp(ctx context.Context, p *stack.Proc) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.WaitHealthy(wctx)
}
