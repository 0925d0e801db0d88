package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Lifecycle is the frame one service process runs in, the same for every service:
//
//  1. Start opens the admin server on DRAIN_ADMIN_ADDR before anything else, so /healthz
//     answers 200 from the first instant whatever NATS and Redis do; /readyz answers 503
//     until the service is ready, /metrics serves Registry.
//  2. The service connects its clients (they reconnect by themselves) and calls Run, which
//     prepares (declares the streams), retrying until it succeeds, and waits until every
//     Need is met, never giving up because NATS or Redis is not up yet.
//  3. Run starts the work.
//  4. On SIGTERM /readyz answers 503 "stopping" and Run waits DRAIN_SHUTDOWN_TIMEOUT for the
//     work to finish (exit 0); work still running then is abandoned, logged at error level
//     (exit 1).
//
// Main drives the whole of it; a service's run function only builds its clients and its Spec.
type Lifecycle struct {
	// Name is the service.
	Name config.Service
	// Config is the configuration the service was started with.
	Config *config.Config
	// Log is the service's JSON logger.
	Log *slog.Logger
	// Registry is served on /metrics; it holds drain_build_info and the Go and process
	// collectors, and the service registers its own metrics on it.
	Registry *prometheus.Registry

	admin   *admin
	running chan struct{}
}

// Start opens the admin server of service name on cfg.AdminAddr with a new registry holding
// drain_build_info and the Go and process collectors, and with cfg.Pprof (DRAIN_PPROF) the
// net/http/pprof handlers under /debug/pprof/. It fails only when the address cannot be
// listened on. Close shuts the server down.
func Start(name config.Service, cfg *config.Config, log *slog.Logger) (*Lifecycle, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		ReadBuildInfo().Collector(string(name)))
	a, err := startAdmin(cfg.AdminAddr, reg, cfg.Pprof, log)
	if err != nil {
		return nil, err
	}
	return &Lifecycle{Name: name, Config: cfg, Log: log, Registry: reg, admin: a, running: make(chan struct{})}, nil
}

// AdminAddr is the address the admin server listens on (the port chosen for ":0").
func (l *Lifecycle) AdminAddr() string { return l.admin.addr }

// Running is closed when Run starts the work.
func (l *Lifecycle) Running() <-chan struct{} { return l.running }

// Close makes /readyz answer "stopping" and shuts the admin server down, waiting at most 2 s
// for requests in progress.
func (l *Lifecycle) Close() { l.admin.shutdown() }

// Spec is what a service hands Run: what it needs, how it gets ready, its work and how that
// work stops.
type Spec struct {
	// Needs are checked by /readyz, which lists the missing ones; Run starts the work only
	// once all of them are met.
	Needs []Need
	// Prepare, when set, runs first and must itself retry until it succeeds or ctx is
	// cancelled (stream.DeclareUntil). An error while ctx is live ends the service (exit 1).
	Prepare func(ctx context.Context) error
	// Work runs until ctx is cancelled (SIGTERM) and returns once it has finished what it
	// holds; an error ends the service (exit 1).
	Work func(ctx context.Context) error
	// Abandoned names the work left unfinished when DRAIN_SHUTDOWN_TIMEOUT passes, and how it
	// comes back ("unacked messages, redelivered by JetStream").
	Abandoned string
	// Linger is how much longer Run waits, after the timeout was reported, for Work to return
	// (so it can give back what it holds rather than leave it to a lease); 0 does not wait.
	Linger time.Duration
	// Routes are extra admin routes (pattern → handler, as http.ServeMux takes them); they
	// answer 503 until the work has started.
	Routes map[string]http.Handler
}

// Run takes the service from connected to stopped: it registers s.Routes, runs s.Prepare,
// waits until every need is met, starts s.Work and returns when the work has returned or, once
// ctx is cancelled, when DRAIN_SHUTDOWN_TIMEOUT has passed (a *ShutdownTimeoutError). It returns
// nil when ctx is cancelled before the service was ready. Call it once.
func (l *Lifecycle) Run(ctx context.Context, s Spec) error {
	for pattern, h := range s.Routes {
		l.admin.mux.Handle(pattern, l.admin.whenRunning(h))
	}
	needs := slices.Clone(s.Needs)
	l.admin.needs.Store(&needs)
	if s.Prepare != nil {
		if err := s.Prepare(ctx); err != nil {
			if ctx.Err() != nil {
				l.Log.Info("stopped before the service was ready")
				return nil
			}
			return err
		}
	}
	if !l.awaitNeeds(ctx, needs) {
		l.Log.Info("stopped before the service was ready")
		return nil
	}
	l.admin.running.Store(true)
	close(l.running)
	l.Log.Info("ready")
	done := make(chan error, 1)
	go func() { done <- s.Work(ctx) }()
	err := AwaitStop(ctx, done, l.Config.ShutdownTimeout, s.Abandoned, func() { l.admin.stopping.Store(true) }, l.Log)
	var timeout *ShutdownTimeoutError
	if errors.As(err, &timeout) && s.Linger > 0 {
		select {
		case <-done:
		case <-time.After(s.Linger):
		}
	}
	l.admin.stopping.Store(true)
	return err
}

// awaitNeeds checks needs until all are met (true) or ctx is cancelled (false), 100 ms after
// the first failed check, doubling to 2 s; it logs the missing needs whenever they change.
func (l *Lifecycle) awaitNeeds(ctx context.Context, needs []Need) bool {
	wait := 100 * time.Millisecond
	var logged []string
	for {
		names, reasons := missing(ctx, needs)
		if len(names) == 0 {
			return ctx.Err() == nil
		}
		if !slices.Equal(names, logged) {
			l.Log.Warn("not ready; waiting", "missing", names, "errors", reasons)
			logged = names
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// NATSNeeds are the needs of a service on the drain's streams: "nats" (nc is connected) and
// "streams" (every drain stream under names and the failures bucket exist, and so does each
// of consumers whose Manage is stream.ManageNone: with DRAIN_STREAM_MANAGE=none an operator
// creates it and the service waits for it; otherwise the work declares it, so it is not a
// need).
func NATSNeeds(nc *nats.Conn, js jetstream.JetStream, names stream.Names, consumers ...stream.ConsumerConfig) []Need {
	consumers = slices.DeleteFunc(slices.Clone(consumers), func(c stream.ConsumerConfig) bool { return c.Manage != stream.ManageNone })
	return []Need{
		{Name: "nats", Check: func(context.Context) error {
			if !nc.IsConnected() {
				return fmt.Errorf("not connected (%s)", nc.Status())
			}
			return nil
		}},
		{Name: "streams", Check: func(ctx context.Context) error { return stream.Ready(ctx, nc, js, names, consumers...) }},
	}
}

// RedisNeed is the need named name (for example "redis" or "cache_redis") met when rdb
// answers PING.
func RedisNeed(name string, rdb redis.UniversalClient) Need {
	return Need{Name: name, Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}
}
