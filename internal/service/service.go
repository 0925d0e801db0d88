// Package service is the common frame of the drain's binaries: flags and -h, configuration,
// JSON logging, signal handling, the admin HTTP server (/healthz, /readyz, /metrics) and
// client construction. Apps do not import it.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/config"
)

// Main is the whole life of a service binary: it parses -h, loads the configuration (exiting
// 2 with one line naming the variable on error), builds a JSON logger, and runs run with a
// context cancelled by SIGTERM or SIGINT. It exits 1 when run fails.
func Main(name config.Service, summary string, run func(ctx context.Context, cfg *config.Config, log *slog.Logger) error) {
	os.Exit(main(name, summary, os.Args[1:], os.Environ(), os.Stderr, run))
}

func main(name config.Service, summary string, args, environ []string, stderr io.Writer,
	run func(context.Context, *config.Config, *slog.Logger) error) int {
	fs := flag.NewFlagSet(string(name), flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [-h]\n\n%s\n\n", name, summary)
		config.Usage(stderr, name)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := config.Load(name, environ)
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration error: %v\n", name, err)
		return 2
	}
	log := NewLogger(stderr, cfg.LogLevel).With("service", string(name))
	redis.SetLogger(redisLogger{log.With("component", "go-redis")})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("exiting", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// NewLogger returns a JSON slog logger at level ("debug", "info", "warn", "error").
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// redisLogger sends go-redis's own messages (dial failures while Redis is away) to slog, so
// every line a service writes is JSON.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}

// NewRegistry returns a Prometheus registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewRedis returns a client for a configured Redis setting (config.Redis.NewClient): a
// single-server client for one URL, a Redis Cluster client for a list of seed nodes, a
// Sentinel-following client when the URL names a master_name.
func NewRedis(r config.Redis) redis.UniversalClient { return r.NewClient() }

// Admin serves /healthz (the process is up), /readyz (ready reports nil) and /metrics.
type Admin struct {
	srv      *http.Server
	addr     string
	stopping atomic.Bool
}

// handler returns the admin routes, plus extra ones, on a new mux.
func (a *Admin) handler(reg *prometheus.Registry, ready func(context.Context) error, extra map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if a.stopping.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"stopping"}`)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, `{"status":"not ready","error":%q}`, err.Error())
			return
		}
		_, _ = io.WriteString(w, `{"status":"ready"}`)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return mux
}

// StartAdmin listens on addr and serves the admin routes plus extra ones (pattern → handler)
// until Shutdown. It returns once the listener is open, so a bad address fails start-up.
func StartAdmin(addr string, reg *prometheus.Registry, ready func(context.Context) error, extra map[string]http.Handler, log *slog.Logger) (*Admin, error) {
	a := &Admin{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	a.addr = ln.Addr().String()
	a.srv = &http.Server{Handler: a.handler(reg, ready, extra), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server failed", "err", err)
		}
	}()
	log.Info("admin listening", "addr", ln.Addr().String())
	return a, nil
}

// Addr is the address the admin server listens on.
func (a *Admin) Addr() string { return a.addr }

// Stopping makes /readyz answer 503 from now on, so load balancers stop sending work.
func (a *Admin) Stopping() { a.stopping.Store(true) }

// Shutdown stops the admin server.
func (a *Admin) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }
