package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/stream"
)

var dlqCommand = &Command{
	Name:    "dlq",
	Usage:   "list [--limit N] [--stage S] | replay [--seq N] [--stage S] | purge [--seq N] [--stage S] [--yes]",
	Summary: "list dead letters without consuming them, replay them to their original subjects, or purge them",
	Run:     runDLQ,
}

// natsConnectTimeout bounds how long a command waits for NATS before it gives up (a variable
// so that tests can shorten it).
var natsConnectTimeout = 5 * time.Second

var stageRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// DeadLetter is one message of the DLQ stream as `dlq list` shows it (the --json form).
type DeadLetter struct {
	Seq            uint64              `json:"seq"` // sequence in the DLQ stream
	Stage          string              `json:"stage"`
	Subject        string              `json:"subject"` // Drain-Original-Subject
	Deliveries     uint64              `json:"deliveries"`
	DeadLetteredAt string              `json:"dead_lettered_at"`
	Error          string              `json:"error"`
	OriginalStream string              `json:"original_stream,omitempty"`
	OriginalSeq    uint64              `json:"original_seq,omitempty"`
	Headers        map[string][]string `json:"headers"` // every header, Drain-* included
	Body           string              `json:"body"`
}

// Replayed is the outcome of replaying one dead letter (the --json form of `dlq replay`).
type Replayed struct {
	Seq       uint64 `json:"seq"` // sequence the dead letter had in the DLQ stream
	Stage     string `json:"stage"`
	Subject   string `json:"subject"`
	Stream    string `json:"stream,omitempty"`     // where it was stored again
	StreamSeq uint64 `json:"stream_seq,omitempty"` // its new sequence there
	Duplicate bool   `json:"duplicate,omitempty"`  // already stored by an earlier replay
	Error     string `json:"error,omitempty"`      // why it was not replayed (it stays in the DLQ)
}

func runDLQ(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 {
		return UsageError("expected list, replay or purge")
	}
	sub, rest := args[0], args[1:]
	if sub != "list" && sub != "replay" && sub != "purge" {
		return UsageError("unknown dlq command %q: expected list, replay or purge", sub)
	}
	fs := e.Flags("dlq " + sub)
	stage := fs.String("stage", "", "only dead letters of this stage (<prefix>.dlq.<stage>)")
	var sel stream.Selection
	var yes *bool
	if sub == "list" {
		fs.IntVar(&sel.Limit, "limit", 0, "at most this many dead letters, oldest first (0: all)")
	} else {
		fs.Uint64Var(&sel.Seq, "seq", 0, "only the dead letter with this DLQ sequence")
	}
	if sub == "purge" {
		yes = fs.Bool("yes", false, "really delete; without it, only count what would be deleted")
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError("%v", err)
	}
	if fs.NArg() > 0 {
		return UsageError("unexpected argument %q", fs.Arg(0))
	}
	if *stage != "" && !stageRE.MatchString(*stage) {
		return UsageError("--stage %q must match [A-Za-z0-9_-]+", *stage)
	}
	if sel.Limit < 0 {
		return UsageError("--limit must not be negative")
	}
	sel.Stage = *stage

	js, err := jetStream(ctx, e)
	if err != nil {
		return err
	}
	dlq, err := stream.OpenDeadLetters(ctx, js, stream.Names{Prefix: e.Cfg.Streams.Prefix})
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return dlqList(ctx, e, dlq, sel)
	case "replay":
		return dlqReplay(ctx, e, dlq, sel)
	}
	return dlqPurge(ctx, e, dlq, sel, *yes)
}

func deadLetterOf(m stream.DLQMsg) DeadLetter {
	d := DeadLetter{
		Seq:            m.Seq,
		Stage:          m.Stage,
		Subject:        m.OrigSubject,
		Deliveries:     m.Deliveries,
		DeadLetteredAt: m.DeadLetteredAt.Format(time.RFC3339Nano),
		Error:          m.Error,
		OriginalStream: m.OrigStream,
		OriginalSeq:    m.OrigSeq,
		Headers:        map[string][]string{},
		Body:           string(m.Data),
	}
	for k, vs := range m.Header {
		d.Headers[k] = vs
	}
	return d
}

func dlqList(ctx context.Context, e *Env, dlq *stream.DeadLetters, sel stream.Selection) error {
	var all []DeadLetter
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	err := dlq.Each(ctx, sel, func(m stream.DLQMsg) error {
		d := deadLetterOf(m)
		if e.JSON {
			all = append(all, d)
			return nil
		}
		_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.Seq, orDash(d.Stage), orDash(d.Subject),
			d.Deliveries, orDash(d.DeadLetteredAt), orDash(oneLine(d.Error)))
		return err
	})
	if e.JSON {
		if err != nil {
			return err
		}
		if all == nil {
			all = []DeadLetter{}
		}
		return e.PrintJSON(all)
	}
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	return err
}

func dlqReplay(ctx context.Context, e *Env, dlq *stream.DeadLetters, sel stream.Selection) error {
	var done []Replayed
	failed := 0
	p := newProgress(e, "dlq replay: %d dead letters handled")
	err := dlq.Replay(ctx, sel, func(out stream.Replayed) error {
		p.add(1)
		r := Replayed{Seq: out.Letter.Seq, Stage: out.Letter.Stage, Subject: out.Letter.OrigSubject,
			Stream: out.Stream, StreamSeq: out.StreamSeq, Duplicate: out.Duplicate}
		if out.Err != nil {
			r.Error = out.Err.Error()
		}
		done = append(done, r)
		if r.Error != "" {
			failed++
			fmt.Fprintf(e.Stderr, "drainctl dlq: %d not replayed, it stays in the DLQ: %s\n", r.Seq, r.Error)
			return nil
		}
		if e.JSON {
			return nil
		}
		dup := ""
		if r.Duplicate {
			dup = " (already stored by an earlier replay)"
		}
		_, err := fmt.Fprintf(e.Stdout, "replayed %d %s -> %s (%s seq %d)%s\n", r.Seq, r.Stage, r.Subject, r.Stream, r.StreamSeq, dup)
		return err
	})
	p.done()
	if e.JSON {
		if done == nil {
			done = []Replayed{}
		}
		if perr := e.PrintJSON(done); err == nil {
			err = perr
		}
	}
	if err != nil {
		return err
	}
	if len(done) == 0 && !e.JSON {
		fmt.Fprintln(e.Stderr, "drainctl dlq: nothing to replay")
	}
	if failed > 0 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%d of %d dead letters not replayed; they stay in %s", failed, len(done), dlq.Stream())}
	}
	return nil
}

// dlqPurge deletes the selected dead letters with --yes; without it, it deletes nothing,
// says how many it would delete and exits 1, so a forgotten --yes is noticed.
func dlqPurge(ctx context.Context, e *Env, dlq *stream.DeadLetters, sel stream.Selection, yes bool) error {
	if !yes {
		n, err := dlq.Count(ctx, sel)
		if err != nil {
			return err
		}
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%d dead letters would be purged from %s; nothing deleted without --yes", n, dlq.Stream())}
	}
	n, err := dlq.Purge(ctx, sel)
	if err != nil {
		return err
	}
	if e.JSON {
		return e.PrintJSON(map[string]uint64{"purged": n})
	}
	_, err = fmt.Fprintf(e.Stdout, "purged %d\n", n)
	return err
}

// jetStream connects to NATS_URL and returns its JetStream context, closed when the command
// returns. Unlike the services, a command does not wait forever for an unreachable server.
func jetStream(ctx context.Context, e *Env) (jetstream.JetStream, error) {
	log := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	conn := e.Cfg.NATS
	conn.Name, conn.Log = "drainctl", log
	nc, js, err := stream.Connect(conn)
	if err != nil {
		return nil, err
	}
	e.OnClose(nc.Close)
	deadline := time.NewTimer(natsConnectTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("cannot reach NATS at %s (NATS_URL) within %s", redactURLs(e.Cfg.NATS.URL), natsConnectTimeout)
		case <-tick.C:
		}
	}
	return js, nil
}

// redactURLs drops the user:password@ or token@ part of each comma-separated URL.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndexByte(p, '@'); at >= 0 {
			scheme := ""
			if j := strings.Index(p, "://"); j >= 0 && j < at {
				scheme = p[:j+3]
			}
			parts[i] = scheme + "***@" + p[at+1:]
		}
	}
	return strings.Join(parts, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps an error message on its line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
