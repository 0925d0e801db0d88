// Command chaos runs the chaos harness (`make chaos`): a simulated Routemaster bus drives
// events through real ingest, filter, warmer and sweeper processes while random processes are
// SIGKILLed and NATS and Redis restart, then checks the drain's guarantees and prints a
// summary. It exits 1 when a check fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/routemaster-drain/drain/e2e/chaos"
)

func main() {
	o := chaos.Options{Log: os.Stderr}
	flag.StringVar(&o.Bin, "bin", "../bin", "directory with the ingest, filter, warmer and sweeper binaries (make build)")
	flag.IntVar(&o.Events, "events", 50000, "events the bus delivers (duplicates included)")
	flag.IntVar(&o.URLs, "urls", 2000, "distinct resource URLs")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed (printed; reuse it to replay a run)")
	flag.IntVar(&o.Rate, "rate", 2000, "events per second the bus offers at most")
	flag.IntVar(&o.InFlight, "inflight", 8, "bus POSTs in flight")
	flag.IntVar(&o.Replicas, "replicas", 2, "processes of each service")
	flag.DurationVar(&o.KillEvery, "kill-every", 2*time.Second, "mean time between SIGKILLs")
	flag.DurationVar(&o.OriginLatency, "origin-latency", time.Millisecond, "origin answer delay")
	flag.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.DurationVar(&o.RedisOutage, "redis-outage", 500*time.Millisecond, "how long Redis stays down when it is killed (filters and warmers pause meanwhile)")
	flag.Int64Var(&o.OriginFailEvery, "origin-503-every", 0, "answer 503 to every n-th origin request (0: never): ordinary failures that spend warm requests' budgets")
	flag.IntVar(&o.MaxDeliver, "max-deliver", 100, "the services' DRAIN_MAX_DELIVER: with the delivery budget spent only by a message's own failures, an outage of any length must leave no dead letter")
	flag.BoolVar(&o.Cluster, "cluster", false, "run on a 3-node NATS cluster (R3 streams) and a Redis Cluster of 3 masters with a replica each (WAIT 1), killing NATS nodes and Redis masters")
	keep := flag.Bool("keep", false, "keep the work directory (stores and service logs)")
	flag.Parse()
	o.Seed = *seed

	work, err := os.MkdirTemp("", "drain-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	o.Work = work
	if o.Bin, err = filepath.Abs(o.Bin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "chaos: seed %d, work directory %s\n", o.Seed, work)
	sum, err := chaos.Run(ctx, o)
	if !*keep && (err == nil && sum.Report.OK()) {
		os.RemoveAll(work)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v (logs in %s)\n", err, work)
		os.Exit(2)
	}
	fmt.Println(sum)
	if !sum.Report.OK() {
		fmt.Printf("chaos: FAILED (seed %d; logs in %s)\n", o.Seed, work)
		os.Exit(1)
	}
	fmt.Println("chaos: every check passed")
}
