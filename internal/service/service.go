// Package service is the common frame of the drain's binaries: flags (-h, -version),
// configuration, JSON logging, signal handling, and one lifecycle for every service (Lifecycle:
// the admin server on DRAIN_ADMIN_ADDR first, then connect and declare until ready, then work,
// then a bounded graceful stop), plus client construction. Apps do not import it.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/config"
)

// Main is the whole life of a service binary: -version prints BuildInfo.Line and exits 0; -h
// prints summary and every variable the service reads; otherwise it loads the configuration
// (exiting 2 with one line naming the variable on error), builds a JSON logger, sets up
// tracing from the OTEL_* variables (StartTracing; off when they are unset), starts the
// Lifecycle (the admin server) and calls run with it and a context cancelled by SIGTERM or
// SIGINT. run builds the service's clients and returns Lifecycle.Run's result. Main exits 0
// when run returns nil, 1 with an error log otherwise (a start-up failure, a failed work, or a
// *ShutdownTimeoutError). Before it exits, the spans still buffered are exported (at most 5 s).
func Main(name config.Service, summary string, run func(ctx context.Context, l *Lifecycle) error) {
	os.Exit(main(name, summary, os.Args[1:], os.Environ(), os.Stdout, os.Stderr, run))
}

func main(name config.Service, summary string, args, environ []string, stdout, stderr io.Writer,
	run func(context.Context, *Lifecycle) error) int {
	fs := flag.NewFlagSet(string(name), flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [-h] [-version]\n\n%s\n\n", name, summary)
		config.Usage(stderr, name)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, ReadBuildInfo().Line(string(name)))
		return 0
	}
	cfg, err := config.Load(name, environ)
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration error: %v\n", name, err)
		return 2
	}
	log := NewLogger(stderr, cfg.LogLevel).With("service", string(name))
	redis.SetLogger(redisLogger{log.With("component", "go-redis")})
	tracing, err := StartTracing(context.Background(), name, lookup(environ), log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration error: %v\n", name, err)
		return 2
	}
	defer func() {
		// Runs after the work has stopped (SIGTERM drained): flush the spans still buffered.
		ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
		defer cancel()
		if err := tracing.Shutdown(ctx); err != nil {
			log.Warn("spans not exported at exit", "err", err)
		}
	}()
	b := ReadBuildInfo()
	log.Info("starting", "version", b.Version, "revision", b.Revision, "go", b.GoVersion)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	l, err := Start(name, cfg, log)
	if err != nil {
		log.Error("exiting", "err", err)
		return 1
	}
	defer l.Close()
	if err := run(ctx, l); err != nil {
		log.Error("exiting", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// tracingFlushTimeout bounds the export of the last spans at exit.
const tracingFlushTimeout = 5 * time.Second

// lookup returns a getenv over environ ("NAME=value" entries; the last one wins).
func lookup(environ []string) func(string) string {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return func(k string) string { return env[k] }
}

// NewLogger returns a JSON slog logger at level ("debug", "info", "warn", "error"). Durations
// are written as Go duration strings ("200ms", "1m30s") rather than slog's default of
// nanoseconds, wherever they appear (DurationsAsStrings).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: DurationsAsStrings}))
}

// DurationsAsStrings is a slog.HandlerOptions.ReplaceAttr that writes every time.Duration
// attribute, in groups too, as its String() ("200ms"), so a reader of the JSON logs never has
// to guess a unit. Other attributes pass unchanged; it allocates only for durations.
func DurationsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// redisLogger sends go-redis's own messages (dial failures while Redis is away) to slog, so
// every line a service writes is JSON.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}

// NewRedis returns a client for a configured Redis setting (config.Redis.NewClient): a
// single-server client for one URL, a Redis Cluster client for a list of seed nodes, a
// Sentinel-following client when the URL names a master_name.
func NewRedis(r config.Redis) redis.UniversalClient { return r.NewClient() }
