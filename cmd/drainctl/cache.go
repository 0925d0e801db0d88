package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/cache"
)

var cacheCommand = &Command{
	Name:  "cache",
	Usage: "get <url> [--version V] [--locale L] [--fetch] | bust <url> | fix-ttl [--batch N]",
	Summary: "print a URL's cached body (exit 1 on a miss; fetches only with --fetch), " +
		"bust a URL's cached variants, or set the TTL on cache keys without one",
	Run: runCache,
}

// runCache runs `drainctl cache get|bust|fix-ttl` (docs/cache.md).
func runCache(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 {
		return UsageError("expected get, bust or fix-ttl")
	}
	sub, rest := args[0], args[1:]
	fs := e.Flags("cache " + sub)
	version := fs.String("version", "", "get: API version (Accept: application/json;v=V)")
	locale := fs.String("locale", "", "get: locale (Accept-Language)")
	fetch := fs.Bool("fetch", false, "get: on a miss, fetch from the origin (through the API client) and store")
	batch := fs.Int("batch", 100, "fix-ttl: keys per SCAN call")
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError("%v", err)
	}
	switch sub {
	case "get", "bust":
		if len(pos) != 1 {
			return UsageError("cache %s: expected one URL, got %d arguments", sub, len(pos))
		}
	case "fix-ttl":
		if len(pos) != 0 {
			return UsageError("cache fix-ttl takes no arguments")
		}
	default:
		return UsageError("unknown cache command %q: expected get, bust or fix-ttl", sub)
	}

	co := e.Cfg.CacheOptions()
	if *fetch && sub == "get" {
		fo := e.Cfg.Fetch
		fo.Logger = slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		client, err := apiclient.New(fo)
		if err != nil {
			return err
		}
		co.Fetcher = cache.APIFetcher(client)
	}
	c, err := cache.New(e.CacheRedis(), co)
	if err != nil {
		return err
	}

	switch sub {
	case "get":
		return cacheGet(ctx, e, c, pos[0], cache.Variant{Version: *version, Locale: *locale}, *fetch)
	case "bust":
		n, err := c.Bust(ctx, pos[0])
		if err != nil {
			return err
		}
		return e.PrintValue(fmt.Sprintf("busted %s (index %d)", pos[0], n), map[string]any{"url": pos[0], "index": n})
	default:
		p := newProgress(e, "cache fix-ttl: %d keys scanned")
		rep, err := c.FixTTL(ctx, cache.FixTTLOptions{Batch: *batch, Progress: func(r cache.FixTTLReport) { p.set(r.Scanned) }})
		p.done()
		if err != nil {
			return fmt.Errorf("%w (after %d keys, %d fixed)", err, rep.Scanned, rep.Fixed)
		}
		return e.PrintValue(fmt.Sprintf("scanned %d\nfixed %d", rep.Scanned, rep.Fixed), map[string]any{"scanned": rep.Scanned, "fixed": rep.Fixed})
	}
}

// cachedDoc is the --json form of `cache get`.
type cachedDoc struct {
	URL       string            `json:"url"`
	Status    int               `json:"status"`
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"`
	Index     int64             `json:"index"`
	FetchedAt string            `json:"fetched_at"`
	Cached    bool              `json:"cached"`
}

func cacheGet(ctx context.Context, e *Env, c *cache.Cache, url string, v cache.Variant, fetch bool) error {
	var r *cache.Response
	var err error
	if fetch {
		r, err = c.Get(ctx, url, v)
	} else {
		r, err = c.Lookup(ctx, url, v)
	}
	if err != nil {
		return err
	}
	if r == nil {
		return &ExitError{Code: 1, Msg: "miss: " + url}
	}
	if e.JSON {
		doc := cachedDoc{URL: url, Status: r.Status, Headers: map[string]string{}, Body: string(r.Body),
			Index: r.Index, Cached: r.Cached}
		if !r.FetchedAt.IsZero() {
			doc.FetchedAt = r.FetchedAt.UTC().Format(time.RFC3339Nano)
		}
		for k := range r.Header {
			doc.Headers[k] = r.Header.Get(k)
		}
		return e.PrintJSON(doc)
	}
	if _, err := e.Stdout.Write(r.Body); err != nil {
		return err
	}
	if len(r.Body) > 0 && r.Body[len(r.Body)-1] != '\n' {
		_, err = io.WriteString(e.Stdout, "\n")
	}
	return err
}

// parseInterspersed parses flags placed before or after the positional arguments
// (`cache get <url> --version 2`) and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
