package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a dead letter, besides the original message's own headers.
const (
	HeaderError          = "Drain-Error"
	HeaderStage          = "Drain-Stage"
	HeaderOrigSubject    = "Drain-Original-Subject"
	HeaderOrigStream     = "Drain-Original-Stream"
	HeaderOrigSequence   = "Drain-Original-Sequence"
	HeaderDeliveries     = "Drain-Deliveries"
	HeaderDeadLetteredAt = "Drain-Dead-Lettered-At"
	// HeaderBodyOmitted is set, to the original body's size in bytes, on a dead letter that
	// could not carry the original body and headers within the server's max_payload: it
	// names the original by Drain-Original-Stream and -Sequence instead, and a replay reads
	// the body and headers from there (as long as that stream still keeps the message).
	HeaderBodyOmitted = "Drain-Body-Omitted"
)

// maxDeadLetterError bounds Drain-Error; a dead letter that does not fit the server's
// max_payload even so gets a shorter one.
const maxDeadLetterError = 1024

// truncatedNote ends a Drain-Error cut to fit the message; the consumer's log has the whole.
const truncatedNote = " [truncated; the whole error is in the consumer's log]"

// Headers of a dead letter's replay: the stream and sequence of the message that was
// dead-lettered, which the replay stands in for. A consumer whose handler keys its effects on
// the message's stream sequence (the filter) uses them instead of the replay's own sequence
// when the replay is stored on the same stream, so the replay reproduces the first delivery.
// Unlike the other Drain-* headers of a dead letter, a replay carries them, and a replay of a
// replay keeps the first message's values.
const (
	HeaderReplayStream   = "Drain-Replay-Stream"
	HeaderReplaySequence = "Drain-Replay-Sequence"
)

// DeadLetter stores msg on subject with its body, its headers and the reason, and waits for
// JetStream to acknowledge it; failures is the number of its failed deliveries
// (Drain-Deliveries). Its Nats-Msg-Id derives from the original stream and sequence, so
// dead-lettering the same message twice stores it once.
//
// The dead letter always fits the server's max_payload: when the original body and headers
// with the Drain-* ones are too large, Drain-Error is cut short first; if that is not enough,
// the dead letter carries only the Drain-* headers and Drain-Body-Omitted, and names the
// original (still in its stream until that stream's max age) by Drain-Original-Stream and
// -Sequence.
func DeadLetter(ctx context.Context, js jetstream.JetStream, subject string, msg Msg, cause error, failures uint64) error {
	l := Letter{OrigSubject: msg.Subject(), Data: msg.Data(), Header: msg.Headers(), ID: MsgID(msg.Subject(), msg.Data())}
	if md, err := msg.Metadata(); err == nil {
		l.origStream, l.origSeq = md.Stream, md.Sequence.Stream
		l.ID = fmt.Sprintf("%s-%d", md.Stream, md.Sequence.Stream)
	}
	return DeadLetterData(ctx, js, subject, l, cause, failures)
}

// Letter is work that failed for good, for DeadLetterData: a message that never was a
// JetStream message, such as a URL the sweeper's webhook kept refusing.
type Letter struct {
	// OrigSubject is where a replay republishes the letter (Drain-Original-Subject). Empty,
	// the letter cannot be replayed (DeadLetters.ReplayMsg reports it and keeps it): list it,
	// deal with it, purge it.
	OrigSubject string
	// Data is the body stored.
	Data []byte
	// Header holds the letter's own headers; the Drain-* ones are added (a Nats-Msg-Id is
	// dropped).
	Header nats.Header
	// ID identifies the work: dead-lettering the same ID on the same stage twice within the
	// duplicate window stores it once (Nats-Msg-Id dlq-<stage>-<ID>). Empty, it is
	// stream.MsgID of the subject and Data.
	ID string

	origStream string // a JetStream message's stream and sequence (DeadLetter)
	origSeq    uint64
}

// DeadLetterData stores l on subject (<prefix>.dlq.<stage>) with the Drain-* headers of
// every dead letter (the reason, the stage, the attempts made) and waits up to 10 s for
// JetStream to acknowledge it; drainctl dlq and DeadLetters read it like any other. Drain-Error
// is cut short to fit the server's max_payload; a dead letter of a JetStream message
// (DeadLetter) that does not fit even so names the original instead of carrying it.
func DeadLetterData(ctx context.Context, js jetstream.JetStream, subject string, l Letter, cause error, attempts uint64) error {
	out := nats.NewMsg(subject)
	stage := subject[strings.LastIndexByte(subject, '.')+1:]
	out.Header.Set(HeaderStage, stage)
	if l.OrigSubject != "" {
		out.Header.Set(HeaderOrigSubject, l.OrigSubject)
	}
	out.Header.Set(HeaderDeliveries, strconv.FormatUint(attempts, 10))
	out.Header.Set(HeaderDeadLetteredAt, time.Now().UTC().Format(time.RFC3339Nano))
	if l.origStream != "" {
		out.Header.Set(HeaderOrigStream, l.origStream)
		out.Header.Set(HeaderOrigSequence, strconv.FormatUint(l.origSeq, 10))
	}
	id := l.ID
	if id == "" {
		id = MsgID(subject, l.Data)
	}
	reason := cause.Error()
	limit := 0
	if nc := js.Conn(); nc != nil {
		limit = int(nc.MaxPayload())
	}
	// room is what the error may take once the rest is in: negative when even an empty one
	// does not fit.
	room := func() int {
		if limit <= 0 {
			return maxDeadLetterError
		}
		return limit - len(out.Data) - HeaderSize(out.Header) - len(HeaderError) - len(": \r\n")
	}
	whole := nats.NewMsg(subject)
	whole.Data = l.Data
	for k, vs := range out.Header {
		whole.Header[k] = vs
	}
	for k, vs := range l.Header {
		if k != jetstream.MsgIDHeader && whole.Header.Get(k) == "" {
			whole.Header[k] = vs
		}
	}
	if limit <= 0 || l.origStream == "" || fitError(reason, whole, limit) {
		out = whole
	} else {
		// The original does not fit with the Drain-* headers: name it instead of carrying it.
		out.Header.Set(HeaderBodyOmitted, strconv.Itoa(len(l.Data)))
	}
	out.Header.Set(HeaderError, shorten(reason, min(maxDeadLetterError, room())))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := js.PublishMsg(ctx, out, jetstream.WithMsgID("dlq-"+stage+"-"+id))
	return err
}

// fitError reports whether m, with a Drain-Error of at least a few bytes of reason, fits a
// server whose max_payload is limit.
func fitError(reason string, m *nats.Msg, limit int) bool {
	least := min(len(reason), 64) + len(truncatedNote)
	return len(m.Data)+HeaderSize(m.Header)+len(HeaderError)+len(": \r\n")+least <= limit
}

// shorten returns s cut to at most n bytes (never inside a UTF-8 sequence), ending with
// truncatedNote when it was cut; "" when n is too small for anything.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len(truncatedNote)
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + truncatedNote
}

// DLQMsg is one dead letter, read from stream <prefix>_dlq without consuming it.
type DLQMsg struct {
	Seq            uint64      // sequence in the DLQ stream
	Subject        string      // <prefix>.dlq.<stage>
	Stage          string      // Drain-Stage; for a message not written by DeadLetter, Subject's last token
	OrigSubject    string      // Drain-Original-Subject: where a replay publishes it ("" if absent)
	OrigStream     string      // Drain-Original-Stream ("" if absent)
	OrigSeq        uint64      // Drain-Original-Sequence (0 if absent)
	Deliveries     uint64      // Drain-Deliveries: its failed deliveries (its own failures; outages not counted)
	Error          string      // Drain-Error: the handler's last error, at most 1 KiB
	DeadLetteredAt time.Time   // Drain-Dead-Lettered-At; if absent or unreadable, when JetStream stored it
	Header         nats.Header // every header: the original message's own and the Drain-* ones
	Data           []byte      // the original body
}

func dlqMsgOf(m *jetstream.RawStreamMsg) DLQMsg {
	h := m.Header
	d := DLQMsg{
		Seq:         m.Sequence,
		Subject:     m.Subject,
		Stage:       h.Get(HeaderStage),
		OrigSubject: h.Get(HeaderOrigSubject),
		OrigStream:  h.Get(HeaderOrigStream),
		Error:       h.Get(HeaderError),
		Header:      h,
		Data:        m.Data,
	}
	if d.Header == nil {
		d.Header = nats.Header{}
	}
	d.OrigSeq, _ = strconv.ParseUint(h.Get(HeaderOrigSequence), 10, 64)
	d.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDeliveries), 10, 64)
	if d.Stage == "" {
		d.Stage = m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	}
	at, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDeadLetteredAt))
	if err != nil {
		at = m.Time
	}
	d.DeadLetteredAt = at.UTC()
	return d
}

// Selection picks dead letters. The zero Selection is every dead letter of every stage.
type Selection struct {
	Stage string // only those on <prefix>.dlq.<Stage> ("" for every stage); a single subject token
	Seq   uint64 // only the dead letter with this DLQ sequence (0 for all)
	Limit int    // at most this many, oldest first (0 for all); Purge refuses a Limit
}

// ErrNoDeadLetter is matched (errors.Is) by the error for a Selection whose Seq is not a dead
// letter (of its Stage, when one is given).
var ErrNoDeadLetter = errors.New("no such dead letter")

type noDeadLetterError struct {
	seq            uint64
	stream, filter string
}

func (e *noDeadLetterError) Error() string {
	return fmt.Sprintf("no dead letter with sequence %d in %s (on %s)", e.seq, e.stream, e.filter)
}

func (e *noDeadLetterError) Is(target error) bool { return target == ErrNoDeadLetter }

// DeadLetters reads, replays and purges the dead letters of one deployment (stream
// <prefix>_dlq). It never creates a consumer: every read is a JetStream "get message" request,
// so listing changes nothing on the server. It is safe for concurrent use.
type DeadLetters struct {
	js     jetstream.JetStream
	names  Names
	stream jetstream.Stream
}

// OpenDeadLetters looks up the DLQ stream of n; it fails when the stream does not exist
// (jetstream.ErrStreamNotFound in the chain).
func OpenDeadLetters(ctx context.Context, js jetstream.JetStream, n Names) (*DeadLetters, error) {
	s, err := js.Stream(ctx, n.Stream(DLQ))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", n.Stream(DLQ), err)
	}
	return &DeadLetters{js: js, names: n, stream: s}, nil
}

// Stream is the name of the DLQ stream, <prefix>_dlq.
func (d *DeadLetters) Stream() string { return d.names.Stream(DLQ) }

func (d *DeadLetters) filter(sel Selection) (string, error) {
	if sel.Stage == "" {
		return d.names.Subject(DLQ, ">"), nil
	}
	if strings.ContainsAny(sel.Stage, ".*> \t\r\n") {
		return "", fmt.Errorf("stage %q: not a single subject token", sel.Stage)
	}
	return d.names.Subject(DLQ, sel.Stage), nil
}

// Each calls fn with the selected dead letters, oldest first, and stops at fn's first error,
// which it returns. It costs one request per dead letter. Only dead letters already stored
// when Each starts are visited, so a message dead-lettered again while fn replays is not
// visited twice.
func (d *DeadLetters) Each(ctx context.Context, sel Selection, fn func(DLQMsg) error) error {
	return d.each(ctx, sel, 0, fn)
}

// each is Each starting at DLQ sequence from (0: the first).
func (d *DeadLetters) each(ctx context.Context, sel Selection, from uint64, fn func(DLQMsg) error) error {
	filter, err := d.filter(sel)
	if err != nil {
		return err
	}
	if sel.Seq != 0 {
		m, err := d.stream.GetMsg(ctx, sel.Seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && !subjectMatches(filter, m.Subject)) {
			return &noDeadLetterError{seq: sel.Seq, stream: d.Stream(), filter: filter}
		}
		if err != nil {
			return fmt.Errorf("read %s at sequence %d: %w", d.Stream(), sel.Seq, err)
		}
		return fn(dlqMsgOf(m))
	}
	info, err := d.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", d.Stream(), err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	n := 0
	for next := max(info.State.FirstSeq, from, 1); next <= last; {
		m, err := d.stream.GetMsg(ctx, next, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s at sequence %d: %w", d.Stream(), next, err)
		}
		if m.Sequence > last {
			return nil
		}
		if err := fn(dlqMsgOf(m)); err != nil {
			return err
		}
		if n++; sel.Limit > 0 && n >= sel.Limit {
			return nil
		}
		next = m.Sequence + 1
	}
	return nil
}

// List returns the selected dead letters, oldest first; use Each to stream a large DLQ.
func (d *DeadLetters) List(ctx context.Context, sel Selection) ([]DLQMsg, error) {
	var out []DLQMsg
	err := d.Each(ctx, sel, func(m DLQMsg) error {
		out = append(out, m)
		return nil
	})
	return out, err
}

// Page returns up to sel.Limit dead letters (sel.Limit ≤ 0 or above MaxPage: MaxPage) with a
// DLQ sequence of at least from, oldest first, and the sequence to pass as from for the next
// page: 0 when there is none. It costs one request per dead letter returned, plus two, so a
// page deep in a large DLQ costs no more than the first. sel.Seq is not supported (use Each).
func (d *DeadLetters) Page(ctx context.Context, sel Selection, from uint64) ([]DLQMsg, uint64, error) {
	if sel.Seq != 0 {
		return nil, 0, errors.New("page: a Seq is not supported; use Each")
	}
	limit := sel.Limit
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	sel.Limit = limit + 1 // one more tells whether there is a next page
	var out []DLQMsg
	var next uint64
	err := d.each(ctx, sel, from, func(m DLQMsg) error {
		if len(out) == limit {
			next = m.Seq
			return nil
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, next, nil
}

// MaxPage is the most dead letters one Page returns.
const MaxPage = 500

// StageCount is the number of dead letters of one stage.
type StageCount struct {
	Stage   string // the subject's last token
	Subject string // <prefix>.dlq.<Stage>
	Count   uint64
}

// CountByStage returns the number of dead letters on each <prefix>.dlq.<stage> subject that
// holds any, ordered by stage. It costs one request whatever the number of dead letters (one
// more per 100,000 stages: the server pages subject counts).
func (d *DeadLetters) CountByStage(ctx context.Context) ([]StageCount, error) {
	info, err := d.stream.Info(ctx, jetstream.WithSubjectFilter(d.names.Subject(DLQ, ">")))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", d.Stream(), err)
	}
	out := make([]StageCount, 0, len(info.State.Subjects))
	for subject, n := range info.State.Subjects {
		out = append(out, StageCount{Stage: subject[strings.LastIndexByte(subject, '.')+1:], Subject: subject, Count: n})
	}
	slices.SortFunc(out, func(a, b StageCount) int { return strings.Compare(a.Subject, b.Subject) })
	return out, nil
}

// Replayed is the outcome of replaying one dead letter.
type Replayed struct {
	Letter    DLQMsg
	Stream    string // where the replay was stored ("" when it was not republished)
	StreamSeq uint64 // its sequence there
	Duplicate bool   // JetStream had stored it already (an earlier replay of the same dead letter)
	// Err is nil when the dead letter was republished and deleted. Otherwise it says why: with
	// Stream empty, it was not republished; with Stream set, it was republished but not deleted.
	// Either way the dead letter stays in the DLQ.
	Err error
}

// ReplayMsg republishes one dead letter to its Drain-Original-Subject with its original
// headers (the Drain-* headers and NATS control headers such as Nats-Msg-Id and
// Nats-Expected-* removed) and Drain-Replay-Stream/-Sequence naming the message it stands for
// (a Drain-Body-Omitted dead letter's body and headers are read from the original's stream),
// waits for JetStream's acknowledgement, and only then deletes it from the DLQ. The replay's
// Nats-Msg-Id is replay-<prefix>_dlq-<DLQ sequence>, so a replay whose delete failed, or two
// operators replaying at once, stores the message once within the duplicate window.
func (d *DeadLetters) ReplayMsg(ctx context.Context, m DLQMsg) Replayed {
	r := Replayed{Letter: m}
	if m.OrigSubject == "" {
		r.Err = errors.New("no " + HeaderOrigSubject + " header")
		return r
	}
	out := nats.NewMsg(m.OrigSubject)
	out.Data = m.Data
	own := m.Header
	if m.Header.Get(HeaderBodyOmitted) != "" {
		// The dead letter names the original instead of carrying it: read it from its stream.
		orig, err := d.original(ctx, m)
		if err != nil {
			r.Err = err
			return r
		}
		out.Data, own = orig.Data, orig.Header
	}
	for k, vs := range own {
		if replayedHeader(k) {
			out.Header[k] = vs
		}
	}
	origin := m.Header
	if m.Header.Get(HeaderBodyOmitted) != "" && own.Get(HeaderReplayStream) != "" {
		// The original was itself a replay: the first message it stands for is named in its
		// own headers, which this dead letter does not carry.
		origin = nats.Header{HeaderReplayStream: own[HeaderReplayStream], HeaderReplaySequence: own[HeaderReplaySequence]}
	}
	setReplayOrigin(out.Header, origin)
	ack, err := d.js.PublishMsg(ctx, out, jetstream.WithMsgID(fmt.Sprintf("replay-%s-%d", d.Stream(), m.Seq)))
	if err != nil {
		r.Err = fmt.Errorf("publish to %s: %w", m.OrigSubject, err)
		return r
	}
	r.Stream, r.StreamSeq, r.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
	if err := d.stream.DeleteMsg(ctx, m.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		r.Err = fmt.Errorf("republished to %s (%s seq %d) but not deleted from %s: %w; "+
			"a replay within DRAIN_DUPLICATE_WINDOW stores it once", m.OrigSubject, ack.Stream, ack.Sequence, d.Stream(), err)
	}
	return r
}

// original reads the message a Drain-Body-Omitted dead letter names.
func (d *DeadLetters) original(ctx context.Context, m DLQMsg) (*jetstream.RawStreamMsg, error) {
	if m.OrigStream == "" || m.OrigSeq == 0 {
		return nil, fmt.Errorf("%s set but no %s and %s", HeaderBodyOmitted, HeaderOrigStream, HeaderOrigSequence)
	}
	s, err := d.js.Stream(ctx, m.OrigStream)
	if err == nil {
		var orig *jetstream.RawStreamMsg
		if orig, err = s.GetMsg(ctx, m.OrigSeq); err == nil {
			return orig, nil
		}
	}
	return nil, fmt.Errorf("the dead letter does not carry the original body (%s) and %s sequence %d cannot be read: %w",
		HeaderBodyOmitted, m.OrigStream, m.OrigSeq, err)
}

// Replay replays the selected dead letters, oldest first (ReplayMsg each), and calls fn with
// each outcome; a dead letter that fails stays in the DLQ and the others are still replayed.
// It returns fn's first error or a failure to read the DLQ; the outcomes carry the rest.
// A replayed message that fails again is dead-lettered again under a new sequence, which this
// Replay does not visit, so a replay never loops.
func (d *DeadLetters) Replay(ctx context.Context, sel Selection, fn func(Replayed) error) error {
	return d.Each(ctx, sel, func(m DLQMsg) error { return fn(d.ReplayMsg(ctx, m)) })
}

// Count returns how many dead letters sel selects, a Limit capping it. It costs one request
// whatever the number of dead letters.
func (d *DeadLetters) Count(ctx context.Context, sel Selection) (uint64, error) {
	n, _, err := d.count(ctx, sel)
	if err == nil && sel.Limit > 0 {
		n = min(n, uint64(sel.Limit))
	}
	return n, err
}

// count returns the number of dead letters sel selects, ignoring its Limit, and the DLQ's last
// sequence when it counted them.
func (d *DeadLetters) count(ctx context.Context, sel Selection) (n, last uint64, err error) {
	if sel.Seq != 0 {
		err := d.Each(ctx, Selection{Stage: sel.Stage, Seq: sel.Seq}, func(DLQMsg) error { return nil })
		if errors.Is(err, ErrNoDeadLetter) {
			return 0, 0, nil
		}
		if err != nil {
			return 0, 0, err
		}
		return 1, sel.Seq, nil
	}
	filter, err := d.filter(sel)
	if err != nil {
		return 0, 0, err
	}
	info, err := d.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", d.Stream(), err)
	}
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, info.State.LastSeq, nil
}

// Purge deletes the selected dead letters without replaying them and returns how many it
// deleted. Only dead letters stored when Purge starts are deleted; a Selection with a Limit
// is refused, and a Seq that is not a dead letter (of the Stage) fails with ErrNoDeadLetter.
// It costs two requests whatever the number of dead letters.
func (d *DeadLetters) Purge(ctx context.Context, sel Selection) (uint64, error) {
	if sel.Limit != 0 {
		return 0, errors.New("purge: a Limit is not supported; select by Stage or Seq")
	}
	filter, err := d.filter(sel)
	if err != nil {
		return 0, err
	}
	if sel.Seq != 0 {
		if err := d.Each(ctx, sel, func(DLQMsg) error { return nil }); err != nil {
			return 0, err
		}
		if err := d.stream.DeleteMsg(ctx, sel.Seq); err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) { // deleted meanwhile, by a replay say
				return 0, nil
			}
			return 0, fmt.Errorf("delete %s sequence %d: %w", d.Stream(), sel.Seq, err)
		}
		return 1, nil
	}
	n, last, err := d.count(ctx, sel)
	if err != nil || n == 0 {
		return 0, err
	}
	if err := d.stream.Purge(ctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(last+1)); err != nil {
		return 0, fmt.Errorf("purge %s on %s: %w", d.Stream(), filter, err)
	}
	return n, nil
}

// subjectMatches reports whether subject matches filter, a subject whose last token may be >.
func subjectMatches(filter, subject string) bool {
	if p, ok := strings.CutSuffix(filter, ">"); ok {
		return strings.HasPrefix(subject, p) && len(subject) > len(p)
	}
	return filter == subject
}

// setReplayOrigin sets the replay's Drain-Replay-Stream and Drain-Replay-Sequence: the message
// the dead letter stands for. A dead letter of a replay already carries them and keeps them:
// they name the first message, not the replay.
func setReplayOrigin(out, dead nats.Header) {
	st, seq := dead.Get(HeaderReplayStream), dead.Get(HeaderReplaySequence)
	if st == "" || seq == "" {
		st, seq = dead.Get(HeaderOrigStream), dead.Get(HeaderOrigSequence)
	}
	if st == "" || seq == "" {
		return
	}
	out.Set(HeaderReplayStream, st)
	out.Set(HeaderReplaySequence, seq)
}

// replayedHeader reports whether a dead letter's header goes with its replay: the original
// message's own headers do, the Drain-* headers of the dead letter and NATS control headers
// (Nats-Msg-Id, Nats-Expected-*, Nats-Rollup, ...) do not.
func replayedHeader(k string) bool {
	lower := strings.ToLower(k)
	return !strings.HasPrefix(lower, "drain-") && !strings.HasPrefix(lower, "nats-")
}
