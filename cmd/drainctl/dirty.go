package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/routemaster-drain/drain/pkg/dirty"
)

var dirtyCommand = &Command{
	Name:    "dirty",
	Usage:   "count|list|sweep [--limit N] | migrate",
	Summary: "count or list the dirty map's URLs, sweep them (print each and remove it), or move filter state and dirty URLs of the layout before buckets into the buckets",
	Run:     runDirty,
}

func runDirty(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 {
		return UsageError("missing subcommand")
	}
	sub := args[0]
	limit, rest, err := limitFlag(e, "dirty "+sub, args[1:])
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return UsageError("unexpected argument %q", rest[0])
	}
	m, err := dirty.New(e.DrainRedis(), e.Cfg.DirtyOptions())
	if err != nil {
		return err
	}
	switch sub {
	case "count":
		n, err := m.Count(ctx)
		if err != nil {
			return err
		}
		return e.PrintValue(strconv.FormatInt(n, 10), map[string]int64{"count": n})
	case "list":
		urls, err := m.List(ctx, limit)
		if err != nil {
			return err
		}
		return e.PrintList(urls)
	case "sweep":
		return sweep(ctx, e, m, limit)
	case "migrate":
		if limit != 0 {
			return UsageError("migrate takes no --limit")
		}
		return migrate(ctx, e, m)
	}
	return UsageError("unknown subcommand %q", sub)
}

// sweep removes URLs from the map, printing each (and its progress on stderr, every 1,000
// URLs or 2 s). In text mode a URL leaves the map only once
// its line is written, so a closed pipe loses nothing; with --json the array is printed when
// the sweep ends.
func sweep(ctx context.Context, e *Env, m *dirty.Map, limit int) error {
	var removed []string
	p := newProgress(e, "dirty sweep: %d URLs swept")
	defer p.done()
	err := m.Sweep(ctx, limit, func(url string) (bool, error) {
		p.add(1)
		if e.JSON {
			removed = append(removed, url)
			return true, nil
		}
		if err := e.PrintList([]string{url}); err != nil {
			return false, err
		}
		return true, nil
	})
	if e.JSON {
		if perr := e.PrintList(removed); err == nil {
			err = perr
		}
	}
	return err
}

// migrate runs dirty.Map.Migrate and prints its report, one "name count" a line (or the
// report as JSON, with "done"). When leases of the old layout still run it says so on
// stderr: run it again once they ended.
func migrate(ctx context.Context, e *Env, m *dirty.Map) error {
	rep, err := m.Migrate(ctx, 100)
	if err != nil {
		return err
	}
	if !rep.Done() {
		fmt.Fprintf(e.Stderr, "drainctl dirty migrate: %d states changed while moving and %d URLs are leased by sweepers of the old layout: run again once those stopped and their leases (DRAIN_SWEEP_LEASE) ended\n",
			rep.StatesChanged, rep.LeasedLeft)
	}
	if e.JSON {
		return e.PrintJSON(struct {
			dirty.MigrateReport
			Done bool `json:"done"`
		}{rep, rep.Done()})
	}
	return e.PrintList([]string{
		fmt.Sprintf("states %d", rep.States),
		fmt.Sprintf("states_changed %d", rep.StatesChanged),
		fmt.Sprintf("dirty %d", rep.Dirty),
		fmt.Sprintf("leased %d", rep.Leased),
		fmt.Sprintf("leased_left %d", rep.LeasedLeft),
	})
}
