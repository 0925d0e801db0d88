// Command drainctl is the drain's operator tool. It reads the same environment as the services
// (ROUTEMASTER_DRAIN_REDIS, NATS_URL, DRAIN_PREFIX, ...) and prints plain text, one item a
// line, or JSON with --json. Run `drainctl -h` for the commands and variables; docs/drainctl.md
// describes each command.
//
// Each command lives in its own file and is listed in commands.go.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/pkg/config"
)

// Command is one drainctl command (the first word after drainctl).
type Command struct {
	Name    string // first word: "dirty"
	Usage   string // arguments after the name: "count|list|sweep [--limit N]"
	Summary string // one line for -h
	// Run runs the command with the words after its name (--json already removed).
	Run func(ctx context.Context, e *Env, args []string) error
}

// Env is what a command works with: the configuration, the output and lazily opened clients,
// closed when the command returns.
type Env struct {
	Cfg    *config.Config
	Stdout io.Writer
	Stderr io.Writer
	JSON   bool // --json was given

	closers    []func()
	drainRedis redis.UniversalClient
	cacheRedis redis.UniversalClient
}

// ExitError ends drainctl with Code, printing Msg (if any) on stderr. Code 1 without a message
// is how a command reports "not found" (a cache miss) quietly.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// UsageError reports bad arguments: drainctl prints it with the command's usage and exits 2.
func UsageError(format string, a ...any) error {
	return &ExitError{Code: 2, Msg: fmt.Sprintf(format, a...)}
}

// DrainRedis returns a client of ROUTEMASTER_DRAIN_REDIS (filter state, dirty map).
func (e *Env) DrainRedis() redis.UniversalClient {
	if e.drainRedis == nil {
		e.drainRedis = service.NewRedis(e.Cfg.DrainRedis)
		e.closers = append(e.closers, func() { _ = e.drainRedis.Close() })
	}
	return e.drainRedis
}

// CacheRedis returns a client of ROUTEMASTER_CACHE_REDIS.
func (e *Env) CacheRedis() redis.UniversalClient {
	if e.cacheRedis == nil {
		e.cacheRedis = service.NewRedis(e.Cfg.CacheRedis)
		e.closers = append(e.closers, func() { _ = e.cacheRedis.Close() })
	}
	return e.cacheRedis
}

// OnClose runs fn when the command has returned (to close a client a command opened).
func (e *Env) OnClose(fn func()) { e.closers = append(e.closers, fn) }

// PrintList prints items one a line, or as a JSON array with --json.
func (e *Env) PrintList(items []string) error {
	if e.JSON {
		if items == nil {
			items = []string{}
		}
		return e.PrintJSON(items)
	}
	for _, it := range items {
		if _, err := fmt.Fprintln(e.Stdout, it); err != nil {
			return err
		}
	}
	return nil
}

// PrintValue prints text as one line, or v as JSON with --json.
func (e *Env) PrintValue(text string, v any) error {
	if e.JSON {
		return e.PrintJSON(v)
	}
	_, err := fmt.Fprintln(e.Stdout, text)
	return err
}

// PrintJSON writes v as one line of JSON, without HTML escaping (URLs keep their & and <).
func (e *Env) PrintJSON(v any) error {
	enc := json.NewEncoder(e.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Flags returns a flag set for a command's options; its errors and -h output go to stderr.
func (e *Env) Flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	return fs
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := Main(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs drainctl with args (without the program name) and returns the exit code: 0 done,
// 1 failed (or not found), 2 bad usage or configuration. -version prints one line naming the
// build (service.BuildInfo.Line).
func Main(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	jsonOut := false
	args = slices.DeleteFunc(slices.Clone(args), func(a string) bool {
		if a == "--json" || a == "-json" {
			jsonOut = true
			return true
		}
		return false
	})
	if len(args) > 0 && (args[0] == "-version" || args[0] == "--version") {
		fmt.Fprintln(stdout, service.ReadBuildInfo().Line("drainctl"))
		return 0
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	i := slices.IndexFunc(commands, func(c *Command) bool { return c.Name == args[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "drainctl: unknown command %q (drainctl -h lists them)\n", args[0])
		return 2
	}
	cmd := commands[i]
	if len(args) > 1 && (args[1] == "-h" || args[1] == "--help") {
		fmt.Fprintf(stderr, "Usage: drainctl %s %s\n\n%s\n", cmd.Name, cmd.Usage, cmd.Summary)
		return 0
	}
	cfg, err := config.Load(config.Drainctl, environ)
	if err != nil {
		fmt.Fprintf(stderr, "drainctl: configuration error: %v\n", err)
		return 2
	}
	e := &Env{Cfg: cfg, Stdout: stdout, Stderr: stderr, JSON: jsonOut}
	defer func() {
		for _, c := range slices.Backward(e.closers) {
			c()
		}
	}()
	err = cmd.Run(ctx, e, args[1:])
	var exit *ExitError
	var bad *config.VarError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &bad): // a setting only this command checks: one line, as at start
		fmt.Fprintf(stderr, "drainctl %s: configuration error: %v\n", cmd.Name, bad)
		return 2
	case errors.As(err, &exit):
		if exit.Msg != "" {
			fmt.Fprintf(stderr, "drainctl %s: %s\n", cmd.Name, exit.Msg)
		}
		if exit.Code == 2 {
			fmt.Fprintf(stderr, "Usage: drainctl %s %s\n", cmd.Name, cmd.Usage)
		}
		return exit.Code
	default:
		fmt.Fprintf(stderr, "drainctl %s: %v\n", cmd.Name, err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: drainctl [--json] <command> [arguments]
       drainctl -version

drainctl inspects and operates a routemaster-drain deployment. It reads the same environment as
the services. Output is plain text, one item a line; --json prints JSON instead.
Exit status: 0 done, 1 failed or not found, 2 bad usage or configuration.

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.Name, c.Usage, c.Summary)
	}
	tw.Flush()
	fmt.Fprintln(w)
	config.Usage(w, config.Drainctl)
}

// limitFlag parses the common --limit N option from args and returns the rest.
func limitFlag(e *Env, name string, args []string) (int, []string, error) {
	fs := e.Flags(name)
	limit := fs.Int("limit", 0, "at most this many URLs (0: no limit)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil, err
		}
		return 0, nil, UsageError("%v", err)
	}
	return *limit, fs.Args(), nil
}

// oneArg checks that args holds exactly one word and returns it.
func oneArg(args []string, what string) (string, error) {
	if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
		return "", UsageError("expected one %s, got %d arguments", what, len(args))
	}
	return args[0], nil
}
