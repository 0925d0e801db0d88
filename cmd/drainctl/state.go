package main

import (
	"context"
	"strconv"

	"github.com/routemaster-drain/drain/pkg/reorder"
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

func runState(ctx context.Context, e *Env, args []string) error {
	url, err := oneArg(args, "URL")
	if err != nil {
		return err
	}
	st, err := reorder.ReadState(ctx, e.DrainRedis(), e.Cfg.DrainRedis.Namespace, url)
	if err != nil {
		return err
	}
	return e.PrintValue(strconv.FormatInt(st.T, 10), State{URL: url, T: st.T, Seq: st.Seq})
}
