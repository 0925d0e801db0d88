package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/routemaster-drain/drain/cmd/drainctl/internal/status"
	"github.com/routemaster-drain/drain/pkg/dirty"
)

var statusCommand = &Command{
	Name:  "status",
	Usage: "",
	Summary: "streams, consumers (pending, ack pending, redelivered, waiting), dead letters by stage, " +
		"the dirty and leased counts, and the readiness of each DRAIN_STATUS_ADMIN_URLS service",
	Run: runStatus,
}

// statusSources opens what status.Gather reads: NATS (waiting for it at most
// natsConnectTimeout) and the drain's Redis.
func statusSources(ctx context.Context, e *Env) (status.Sources, error) {
	js, err := jetStream(ctx, e)
	if err != nil {
		return status.Sources{}, err
	}
	m, err := dirty.New(e.DrainRedis(), e.Cfg.DirtyOptions())
	if err != nil {
		return status.Sources{}, err
	}
	return status.Sources{JS: js, Names: e.Cfg.Streams.Names(), Dirty: m, Admins: e.Cfg.Console.AdminURLs}, nil
}

func runStatus(ctx context.Context, e *Env, args []string) error {
	if len(args) > 0 {
		return UsageError("status takes no arguments, got %q", args[0])
	}
	src, err := statusSources(ctx, e)
	if err != nil {
		return err
	}
	st, err := status.Gather(ctx, src)
	if err != nil {
		return err
	}
	if e.JSON {
		return e.PrintJSON(st)
	}
	return e.PrintList(statusLines(st))
}

// statusLines is the plain-text form of a Status: one item a line, the kind of item first,
// then its name and key=value pairs.
func statusLines(st *status.Status) []string {
	var out []string
	for _, s := range st.Streams {
		if s.Missing {
			out = append(out, fmt.Sprintf("stream %s missing", s.Name))
			continue
		}
		out = append(out, fmt.Sprintf("stream %s messages=%d bytes=%d consumers=%d", s.Name, s.Messages, s.Bytes, s.Consumers))
	}
	for _, c := range st.Consumers {
		out = append(out, fmt.Sprintf("consumer %s stream=%s stage=%s pending=%d ack_pending=%d redelivered=%d waiting=%d dead_letters=%d",
			c.Name, c.Stream, c.Stage, c.Pending, c.AckPending, c.Redelivered, c.Waiting, c.DeadLetters))
	}
	out = append(out, fmt.Sprintf("dead_letters %d", st.DeadLetters))
	for _, d := range st.DeadLettersByStage {
		out = append(out, fmt.Sprintf("dead_letters stage=%s %d", d.Stage, d.Count))
	}
	out = append(out, fmt.Sprintf("dirty %d", st.Dirty), fmt.Sprintf("leased %d", st.Leased))
	for _, s := range st.Services {
		switch {
		case s.Error != "":
			out = append(out, fmt.Sprintf("service %s unreachable %s", s.Name, oneLine(s.Error)))
		case s.Ready:
			out = append(out, fmt.Sprintf("service %s ready %d %s", s.Name, s.Code, oneLine(s.Body)))
		default:
			out = append(out, fmt.Sprintf("service %s not-ready %d %s", s.Name, s.Code, oneLine(s.Body)))
		}
	}
	for i, l := range out {
		out[i] = strings.TrimSpace(l)
	}
	return out
}
