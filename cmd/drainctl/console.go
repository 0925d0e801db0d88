package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/routemaster-drain/drain/cmd/drainctl/internal/console"
	"github.com/routemaster-drain/drain/cmd/drainctl/internal/status"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/stream"
)

var consoleCommand = &Command{
	Name:  "console",
	Usage: "",
	Summary: "serve the web console on DRAIN_CONSOLE_ADDR (pipeline, dead letters, URL inspector, circuit breakers) " +
		"until SIGINT/SIGTERM; DRAIN_CONSOLE_TOKEN is required unless the address is a loopback one",
	Run: runConsole,
}

// consoleShutdown bounds how long a stopping console waits for requests in flight.
const consoleShutdown = 5 * time.Second

func runConsole(ctx context.Context, e *Env, args []string) error {
	if len(args) > 0 {
		return UsageError("console takes no arguments, got %q", args[0])
	}
	cc := e.Cfg.Console
	if cc.Token == "" && !loopback(cc.Addr) {
		return &config.VarError{Name: "DRAIN_CONSOLE_TOKEN", Msg: fmt.Sprintf(
			"is empty and DRAIN_CONSOLE_ADDR %s is not a loopback address: set a token, or listen on 127.0.0.1", cc.Addr)}
	}
	log := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Unlike the other commands, the console does not wait for NATS: it starts at once and its
	// pages say what cannot be read until NATS answers (the connection retries forever).
	conn := e.Cfg.NATS
	conn.Name, conn.Log = "drainctl-console", log
	nc, js, err := stream.Connect(conn)
	if err != nil {
		return err
	}
	e.OnClose(nc.Close)
	c, err := cache.New(e.CacheRedis(), e.Cfg.CacheOptions())
	if err != nil {
		return err
	}
	m, err := dirty.New(e.DrainRedis(), e.Cfg.DirtyOptions())
	if err != nil {
		return err
	}
	h, err := console.New(console.Config{
		Sources: status.Sources{
			JS:     js,
			Names:  e.Cfg.Streams.Names(),
			Dirty:  m,
			Admins: cc.AdminURLs,
		},
		DrainRedis: e.DrainRedis(),
		Namespace:  e.Cfg.DrainRedis.Namespace,
		Cache:      c,
		Token:      cc.Token,
		Log:        log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cc.Addr)
	if err != nil {
		return fmt.Errorf("listen on DRAIN_CONSOLE_ADDR %s: %w", cc.Addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	auth := "token required"
	if cc.Token == "" {
		auth = "no token: loopback only"
	}
	fmt.Fprintf(e.Stdout, "drainctl console: serving http://%s/ (%s)\n", ln.Addr(), auth)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), consoleShutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("console: shutdown: %w", err)
	}
	return nil
}

// loopback reports whether addr (host:port) listens on a loopback interface only: localhost
// or a loopback IP. An empty host listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
