package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/stream"
)

var dlqCommand = &Command{
	Name:    "dlq",
	Usage:   "list [--limit N] [--stage S] | replay [--seq N] [--stage S]",
	Summary: "list dead letters without consuming them, or replay them to their original subjects",
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
		return UsageError("expected list or replay")
	}
	sub, rest := args[0], args[1:]
	if sub != "list" && sub != "replay" {
		return UsageError("unknown dlq command %q: expected list or replay", sub)
	}
	fs := e.Flags("dlq " + sub)
	stage := fs.String("stage", "", "only dead letters of this stage (<prefix>.dlq.<stage>)")
	var limit *int
	var seq *uint64
	if sub == "list" {
		limit = fs.Int("limit", 0, "at most this many dead letters, oldest first (0: all)")
	} else {
		seq = fs.Uint64("seq", 0, "only the dead letter with this DLQ sequence")
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
	if limit != nil && *limit < 0 {
		return UsageError("--limit must not be negative")
	}

	js, err := jetStream(ctx, e)
	if err != nil {
		return err
	}
	names := stream.Names{Prefix: e.Cfg.Streams.Prefix}
	dlq, err := js.Stream(ctx, names.Stream(stream.DLQ))
	if err != nil {
		return fmt.Errorf("stream %s: %w", names.Stream(stream.DLQ), err)
	}
	filter := names.Subject(stream.DLQ, ">")
	if *stage != "" {
		filter = names.Subject(stream.DLQ, *stage)
	}
	sel := selection{filter: filter}
	if seq != nil {
		sel.seq = *seq
	}
	if limit != nil {
		sel.limit = *limit
	}
	if sub == "list" {
		return dlqList(ctx, e, dlq, sel)
	}
	return dlqReplay(ctx, e, js, dlq, sel)
}

// selection says which dead letters a command works on.
type selection struct {
	filter string // DLQ subject (with > for all stages)
	seq    uint64 // only this DLQ sequence (0: all)
	limit  int    // at most this many (0: all)
}

// each calls fn with the selected dead letters, oldest first, without consuming them: it reads
// them by sequence (a JetStream "get next message on subject" per dead letter), so no consumer
// is created and nothing is acknowledged. Only messages already stored when each starts are
// visited, so a message dead-lettered again during a replay is not replayed twice.
func (sel selection) each(ctx context.Context, dlq jetstream.Stream, fn func(*jetstream.RawStreamMsg) error) error {
	if sel.seq != 0 {
		m, err := dlq.GetMsg(ctx, sel.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && !subjectMatches(sel.filter, m.Subject)) {
			return fmt.Errorf("no dead letter with sequence %d in %s (on %s)", sel.seq, dlq.CachedInfo().Config.Name, sel.filter)
		}
		if err != nil {
			return err
		}
		return fn(m)
	}
	info, err := dlq.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	n := 0
	for next := max(info.State.FirstSeq, 1); next <= last; {
		m, err := dlq.GetMsg(ctx, next, jetstream.WithGetMsgSubject(sel.filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s at sequence %d: %w", info.Config.Name, next, err)
		}
		if m.Sequence > last {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		if n++; sel.limit > 0 && n >= sel.limit {
			return nil
		}
		next = m.Sequence + 1
	}
	return nil
}

// subjectMatches reports whether subject matches filter, a subject whose last token may be >.
func subjectMatches(filter, subject string) bool {
	if p, ok := strings.CutSuffix(filter, ">"); ok {
		return strings.HasPrefix(subject, p) && len(subject) > len(p)
	}
	return filter == subject
}

func deadLetterOf(m *jetstream.RawStreamMsg) DeadLetter {
	h := m.Header
	d := DeadLetter{
		Seq:            m.Sequence,
		Stage:          h.Get(stream.HeaderStage),
		Subject:        h.Get(stream.HeaderOrigSubject),
		DeadLetteredAt: h.Get(stream.HeaderDeadLetteredAt),
		Error:          h.Get(stream.HeaderError),
		OriginalStream: h.Get(stream.HeaderOrigStream),
		Headers:        map[string][]string{},
		Body:           string(m.Data),
	}
	d.Deliveries, _ = strconv.ParseUint(h.Get(stream.HeaderDeliveries), 10, 64)
	d.OriginalSeq, _ = strconv.ParseUint(h.Get(stream.HeaderOrigSequence), 10, 64)
	if d.Stage == "" { // not written by stream.DeadLetter: the stage is the subject's last token
		d.Stage = m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	}
	if d.DeadLetteredAt == "" {
		d.DeadLetteredAt = m.Time.UTC().Format(time.RFC3339Nano)
	}
	for k, vs := range h {
		d.Headers[k] = vs
	}
	return d
}

func dlqList(ctx context.Context, e *Env, dlq jetstream.Stream, sel selection) error {
	var all []DeadLetter
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	err := sel.each(ctx, dlq, func(m *jetstream.RawStreamMsg) error {
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

func dlqReplay(ctx context.Context, e *Env, js jetstream.JetStream, dlq jetstream.Stream, sel selection) error {
	dlqName := dlq.CachedInfo().Config.Name
	var done []Replayed
	failed := 0
	err := sel.each(ctx, dlq, func(m *jetstream.RawStreamMsg) error {
		r := replay(ctx, js, dlq, dlqName, m)
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
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%d of %d dead letters not replayed; they stay in %s", failed, len(done), dlqName)}
	}
	return nil
}

// replay republishes one dead letter to its original subject with its original headers and
// the Drain-Replay-* headers naming the original message, waits for JetStream to store it,
// then deletes it from the DLQ. Its Nats-Msg-Id names the dead
// letter, so a replay whose delete failed (or two operators replaying at once) stores the
// message once within the duplicate window.
func replay(ctx context.Context, js jetstream.JetStream, dlq jetstream.Stream, dlqName string, m *jetstream.RawStreamMsg) Replayed {
	d := deadLetterOf(m)
	r := Replayed{Seq: d.Seq, Stage: d.Stage, Subject: d.Subject}
	if d.Subject == "" {
		r.Error = "no " + stream.HeaderOrigSubject + " header"
		return r
	}
	out := nats.NewMsg(d.Subject)
	out.Data = m.Data
	for k, vs := range m.Header {
		if replayedHeader(k) {
			out.Header[k] = vs
		}
	}
	setReplayOrigin(out.Header, m.Header)
	ack, err := js.PublishMsg(ctx, out, jetstream.WithMsgID(fmt.Sprintf("replay-%s-%d", dlqName, m.Sequence)))
	if err != nil {
		r.Error = fmt.Sprintf("publish to %s: %v", d.Subject, err)
		return r
	}
	r.Stream, r.StreamSeq, r.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
	if err := dlq.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		r.Error = fmt.Sprintf("republished to %s (%s seq %d) but not deleted from %s: %v; "+
			"a replay within DRAIN_DUPLICATE_WINDOW stores it once", d.Subject, ack.Stream, ack.Sequence, dlqName, err)
	}
	return r
}

// setReplayOrigin sets the replay's Drain-Replay-Stream and Drain-Replay-Sequence: the message
// the dead letter stands for, so the filter reruns the batch under the sequence its first
// delivery had (docs/filter.md, "Replaying a dead letter"). A dead letter of a replay already
// carries them and keeps them: they name the first message, not the replay.
func setReplayOrigin(out, dead nats.Header) {
	st, seq := dead.Get(stream.HeaderReplayStream), dead.Get(stream.HeaderReplaySequence)
	if st == "" || seq == "" {
		st, seq = dead.Get(stream.HeaderOrigStream), dead.Get(stream.HeaderOrigSequence)
	}
	if st == "" || seq == "" {
		return
	}
	out.Set(stream.HeaderReplayStream, st)
	out.Set(stream.HeaderReplaySequence, seq)
}

// replayedHeader reports whether a dead letter's header goes with its replay: the original
// message's own headers do, the Drain-* headers of the dead letter and NATS control headers
// (Nats-Msg-Id, Nats-Expected-*, Nats-Rollup, ...) do not.
func replayedHeader(k string) bool {
	lower := strings.ToLower(k)
	return !strings.HasPrefix(lower, "drain-") && !strings.HasPrefix(lower, "nats-")
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
