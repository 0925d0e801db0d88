package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/apiclient"
	"github.com/routemaster-drain/drain/cache"
	"github.com/routemaster-drain/drain/config"
)

const cacheUsage = `Usage:
  drainctl cache get <url> [--version V] [--locale L] [--fetch] [--json]
      print the cached body of url (exit 1 on a miss); --fetch fetches and stores on a miss
  drainctl cache bust <url> [--json]
      delete every cached variant of url and bump its invalidation index
  drainctl cache fix-ttl [--batch N] [--json]
      set ROUTEMASTER_CACHE_EXPIRY on cache keys that have no TTL
`

// runCache runs `drainctl cache ...` with args (after "cache") and returns the exit code:
// 0 done, 1 a miss or a failure, 2 bad usage.
func runCache(ctx context.Context, cfg *config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, cacheUsage)
		return 2
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("drainctl cache "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cacheUsage) }
	jsonOut := fs.Bool("json", false, "print JSON")
	version := fs.String("version", "", "API version (Accept: application/json;v=V)")
	locale := fs.String("locale", "", "locale (Accept-Language)")
	fetch := fs.Bool("fetch", false, "on a miss, fetch from the origin and store")
	batch := fs.Int("batch", 100, "keys per SCAN call")
	url, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	needURL := sub == "get" || sub == "bust"
	switch {
	case sub != "get" && sub != "bust" && sub != "fix-ttl":
		fmt.Fprintf(stderr, "drainctl cache: unknown command %q\n%s", sub, cacheUsage)
		return 2
	case needURL && len(url) != 1:
		fmt.Fprintf(stderr, "drainctl cache %s: exactly one URL expected\n", sub)
		return 2
	case !needURL && len(url) != 0:
		fmt.Fprintf(stderr, "drainctl cache %s: takes no arguments\n", sub)
		return 2
	}

	rdb := newCacheRedis(cfg)
	defer rdb.Close()
	ccfg := cache.Config{Redis: rdb, Namespace: cfg.CacheRedis.Namespace, Expiry: cfg.CacheExpiry, MaxBody: cfg.Fetch.MaxBody}
	if *fetch {
		client, err := apiclient.New(cfg.Fetch,
			apiclient.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
		if err != nil {
			fmt.Fprintf(stderr, "drainctl cache: %v\n", err)
			return 1
		}
		ccfg.Fetcher = cache.APIFetcher(client)
	}
	c, err := cache.New(ccfg)
	if err != nil {
		fmt.Fprintf(stderr, "drainctl cache: %v\n", err)
		return 1
	}
	out := output{w: stdout, json: *jsonOut}

	switch sub {
	case "get":
		v := cache.Variant{Version: *version, Locale: *locale}
		var r *cache.Response
		if *fetch {
			r, err = c.Get(ctx, url[0], v)
		} else {
			r, err = c.Lookup(ctx, url[0], v)
		}
		if err != nil {
			fmt.Fprintf(stderr, "drainctl cache get: %v\n", err)
			return 1
		}
		if r == nil {
			fmt.Fprintf(stderr, "miss: %s\n", url[0])
			return 1
		}
		if out.json {
			headers := map[string]string{}
			for k := range r.Header {
				headers[k] = r.Header.Get(k)
			}
			return out.emit(stderr, map[string]any{
				"url": url[0], "status": r.Status, "headers": headers, "body": string(r.Body),
				"index": r.Index, "fetched_at": r.FetchedAt.UTC().Format(time.RFC3339Nano), "cached": r.Cached,
			})
		}
		_, _ = stdout.Write(r.Body)
		if len(r.Body) > 0 && r.Body[len(r.Body)-1] != '\n' {
			_, _ = io.WriteString(stdout, "\n")
		}
		return 0
	case "bust":
		n, err := c.Bust(ctx, url[0])
		if err != nil {
			fmt.Fprintf(stderr, "drainctl cache bust: %v\n", err)
			return 1
		}
		if out.json {
			return out.emit(stderr, map[string]any{"url": url[0], "index": n})
		}
		fmt.Fprintf(stdout, "busted %s (index %d)\n", url[0], n)
		return 0
	default: // fix-ttl
		rep, err := c.FixTTL(ctx, *batch)
		if err != nil {
			fmt.Fprintf(stderr, "drainctl cache fix-ttl: %v (after %d keys, %d fixed)\n", err, rep.Scanned, rep.Fixed)
			return 1
		}
		if out.json {
			return out.emit(stderr, map[string]any{"scanned": rep.Scanned, "fixed": rep.Fixed})
		}
		fmt.Fprintf(stdout, "scanned %d\nfixed %d\n", rep.Scanned, rep.Fixed)
		return 0
	}
}

// newCacheRedis is a client of the configured cache Redis.
func newCacheRedis(cfg *config.Config) *redis.Client {
	opts := *cfg.CacheRedis.Options
	opts.ReadTimeout, opts.WriteTimeout = 10*time.Second, 10*time.Second
	return redis.NewClient(&opts)
}

// parseInterspersed parses flags that may come before or after the positional arguments
// (`cache get <url> --version 2`), and returns the positional ones.
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

type output struct {
	w    io.Writer
	json bool
}

func (o output) emit(stderr io.Writer, v any) int {
	enc := json.NewEncoder(o.w)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "drainctl: %v\n", err)
		return 1
	}
	return 0
}
