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
	// Cluster runs on a 3-node NATS cluster with R3 streams and a Redis Cluster of 3 masters
	// with a replica each (DRAIN_REDIS_WAIT_REPLICAS=1); its faults SIGKILL NATS nodes (the
	// events stream's leader first) and Redis masters instead of restarting single servers.
	Cluster bool
	Log     io.Writer
}

// Summary is what a run did and found.
type Summary struct {
	Plan  *Plan
	Bus   BusStats
	Kills map[string]int
	NATS  int // NATS faults (restarts, or node kills on a cluster)
	Redis int // Redis faults (restarts, or master kills on a cluster)
	// Faults says what each NATS and Redis fault was, in order.
	Faults []string
	// RedisDown is Options.RedisOutage: how long a Redis fault lasts at least (a cluster's
	// killed master is started again only once its replica took over), and MaxDeliver the
	// services' DRAIN_MAX_DELIVER.
	RedisDown  time.Duration
	MaxDeliver int
	Servers    string // what ran NATS and Redis
	Settled    time.Duration
	Report     Report
	Origin     int64 // origin requests served
	Failed     int64 // of which answered 503 (Options.OriginFailEvery)
}

// String prints the summary.
func (s Summary) String() string {
	return fmt.Sprintf("chaos: %d events (%d duplicates) over %d URLs in %d batches\n  servers: %s\n  bus: %s\n  SIGKILLs: %v; NATS faults: %d; Redis faults: %d (down %s each, DRAIN_MAX_DELIVER=%d): %s\n  origin fetches: %d (%d answered 503); settled %s after the last batch\n%s",
		s.Plan.Events, s.Plan.Dups, len(s.Plan.URLs), len(s.Plan.Batches), s.Servers, s.Bus, s.Kills, s.NATS, s.Redis, s.RedisDown, s.MaxDeliver,
		strings.Join(s.Faults, "; "), s.Origin, s.Failed, s.Settled.Round(time.Millisecond), s.Report)
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

	prefix, namespace := "chaos", "chaos"
	var srvs servers
	var err error
	if o.Cluster {
		srvs, err = startClustered(o, stream.Names{Prefix: prefix}, logf)
	} else {
		srvs, err = startSingle(o)
	}
	if err != nil {
		return nil, err
	}
	defer srvs.close()

	plan := NewPlan(o.Seed, o.Events, o.URLs, "") // base filled in once the origin listens
	origin := NewOrigin(plan, o.OriginLatency)
	origin.FailEvery = o.OriginFailEvery
	srv := httptest.NewServer(origin)
	defer srv.Close()
	*plan = *NewPlan(o.Seed, o.Events, o.URLs, srv.URL)

	common := []string{
		"NATS_URL=" + srvs.natsURL(),
		"DRAIN_PREFIX=" + prefix,
		"DRAIN_LOG_LEVEL=warn",
		"DRAIN_SHUTDOWN_TIMEOUT=5s",
		"ROUTEMASTER_DRAIN_REDIS=" + srvs.redisURL(namespace),
		"ROUTEMASTER_CACHE_REDIS=" + srvs.redisURL(namespace),
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
	common = append(common, srvs.env()...)
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
	logf("%d service processes up; %s; origin %s", len(procs), srvs, srv.URL)

	sum := &Summary{Plan: plan, Kills: map[string]int{}, RedisDown: o.RedisOutage, MaxDeliver: o.MaxDeliver, Servers: srvs.String()}
	bus := &Bus{Targets: targets, Token: "chaos", InFlight: o.InFlight, Rate: o.Rate, Origin: origin}
	busDone := make(chan BusStats, 1)
	go func() { busDone <- bus.Deliver(ctx, plan.Batches) }()

	faults := srvs.faults()
	// breakServer begins fault f, counts it and returns its repair.
	breakServer := func(f fault) func() error {
		what, repair, err := f.begin()
		if err != nil {
			logf("fault: %v", err)
			return nil
		}
		logf("%s (%d/%d batches acknowledged); repair in %s", what, bus.Acked(), len(plan.Batches), f.down)
		sum.Faults = append(sum.Faults, what)
		if f.nats {
			sum.NATS++
		} else {
			sum.Redis++
		}
		return repair
	}

	// Chaos until the bus is done and the last server is repaired: random SIGKILLs of
	// services, and the servers' faults when their share of batches is acknowledged, the
	// SIGKILLs going on while a server is down (so messages held through an outage move
	// between processes).
	rng := rand.New(rand.NewPCG(o.Seed, 7))
	var stats BusStats
	chaosCtx, stopChaos := context.WithCancel(ctx)
	var chaosWG sync.WaitGroup
	chaosWG.Add(1)
	go func() {
		defer chaosWG.Done()
		total := len(plan.Batches)
		kills := 0
		var repair func() error // the broken server's repair, while one is broken
		var repairAt time.Time
		repairNow := func() {
			if repair != nil {
				if err := repair(); err != nil {
					logf("repair failed: %v", err)
				}
				repair = nil
			}
		}
		for {
			wait := o.KillEvery/2 + time.Duration(rng.Int64N(int64(o.KillEvery)))
			stop := chaosCtx.Done()
			if repair != nil {
				wait = max(0, min(wait, time.Until(repairAt)))
				stop = ctx.Done()
			}
			select {
			case <-stop:
				repairNow() // the run's time is up
				return
			case <-time.After(wait):
			}
			if repair != nil && !time.Now().Before(repairAt) {
				repairNow()
				continue
			}
			if repair == nil && len(faults) > 0 && float64(bus.Acked()) >= faults[0].at*float64(total) {
				f := faults[0]
				faults = faults[1:]
				repair, repairAt = breakServer(f), time.Now().Add(f.down)
				continue
			}
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
	}()
	stats = <-busDone
	logf("bus done: %s", stats)
	stopChaos()
	chaosWG.Wait()
	sum.Bus = stats
	// Every fault is promised, even on a short run: those still due happen after the last
	// batch, one after the other.
	for _, f := range faults {
		repair := breakServer(f)
		select {
		case <-ctx.Done():
		case <-time.After(f.down):
		}
		if repair != nil {
			if err := repair(); err != nil {
				return nil, err
			}
		}
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

	nc, err := nats.Connect(srvs.natsURL(), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	rdb := srvs.redisClient()
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
