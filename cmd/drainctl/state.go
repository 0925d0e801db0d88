package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

var stateCommand = &Command{
	Name:    "state",
	Usage:   "<url>",
	Summary: "newest event time t (ms) the filter knows for the URL, 0 if none",
	Run:     runState,
}

// State is the filter's reorder state of one URL.
type State struct {
	URL string `json:"url"`
	T   int64  `json:"t"`
	Seq uint64 `json:"seq"`
}

// stateKey is the filter's state key of url (docs/redis.md, "Filter state").
func stateKey(ns, url string) string { return "{" + ns + "}:dirtymap:state:" + url }

func runState(ctx context.Context, e *Env, args []string) error {
	url, err := oneArg(args, "URL")
	if err != nil {
		return err
	}
	st, err := readState(ctx, e.DrainRedis(), e.Cfg.DrainRedis.Namespace, url)
	if err != nil {
		return err
	}
	return e.PrintValue(strconv.FormatInt(st.T, 10), st)
}

func readState(ctx context.Context, rdb redis.Cmdable, ns, url string) (State, error) {
	st := State{URL: url}
	raw, err := rdb.Get(ctx, stateKey(ns, url)).Result()
	if errors.Is(err, redis.Nil) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	raw = strings.TrimSpace(raw)
	// The state is JSON {"t":..,"seq":..}; a plain integer t is accepted too.
	if t, err := strconv.ParseInt(raw, 10, 64); err == nil {
		st.T = t
		return st, nil
	}
	var v struct {
		T   json.Number `json:"t"`
		Seq uint64      `json:"seq"`
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return st, fmt.Errorf("state of %s is not JSON {\"t\":..,\"seq\":..}: %.80q", url, raw)
	}
	if v.T != "" {
		f, err := v.T.Float64()
		if err != nil {
			return st, fmt.Errorf("state of %s: t %q is not a number", url, v.T)
		}
		st.T = int64(f)
	}
	st.Seq = v.Seq
	return st, nil
}
