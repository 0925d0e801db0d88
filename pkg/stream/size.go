package stream

import (
	"fmt"
	"math"
	"net/textproto"

	"github.com/nats-io/nats.go"

	"github.com/routemaster-drain/drain/pkg/event"
)

// A NATS server refuses a message larger than its max_payload (1 MiB by default; nats.go
// checks it before sending, nats.ErrMaxPayload), headers and body together, and no retry can
// change that. So the drain never publishes a batch message larger than BatchLimit: a batch
// that does not fit is split (SplitBatch), and an event that cannot fit even alone is refused
// where it enters (ingest answers 413).

// batchReserve is the room BatchLimit leaves below max_payload for the headers of a batch
// message: the publisher's own (Nats-Msg-Id, the filter's Drain-Original-*, trace context) and
// those its dead letter or a replay of it adds (at most 1.3 KiB), so a batch message can
// always be dead-lettered and replayed whole.
const batchReserve = 4096

// BatchLimit returns the largest body, in bytes, of a batch message (a JSON array of events on
// <prefix>.events., .siphon. or .changed.) on a connection whose server's max_payload is
// maxPayload (nats.Conn.MaxPayload): maxPayload less 4 KiB for headers (less a quarter of it
// on a server whose max_payload is under 16 KiB). It returns math.MaxInt when maxPayload is
// not known yet (0: never connected), since nothing can be published then anyway.
func BatchLimit(maxPayload int64) int {
	if maxPayload <= 0 {
		return math.MaxInt
	}
	return int(maxPayload - min(batchReserve, maxPayload/4))
}

// BodyLimit returns the largest body a message with header h can carry on nc: the server's
// max_payload less the header's size; math.MaxInt when max_payload is not known yet (never
// connected). A body within it is published, but leaves no room for a dead letter's headers
// (DeadLetter then names the message instead of carrying it); BatchLimit leaves that room.
func BodyLimit(nc *nats.Conn, h nats.Header) int {
	maxPayload := nc.MaxPayload()
	if maxPayload <= 0 {
		return math.MaxInt
	}
	return int(maxPayload) - HeaderSize(h)
}

// OversizeEventError is SplitBatch's error for an event that does not fit a message even alone.
type OversizeEventError struct {
	Index int // the event's position in the slice given to SplitBatch
	Size  int // the JSON array of that event alone, in bytes
	Limit int // the limit it exceeds
}

func (e *OversizeEventError) Error() string {
	return fmt.Sprintf("event %d is %d bytes as a batch of its own, more than the %d bytes a NATS message can carry (the server's max_payload less room for headers)",
		e.Index, e.Size, e.Limit)
}

// SplitBatch returns events as JSON arrays (each event's Raw bytes, or its fields when it has
// none, as event.AppendJSON writes them) of at most limit bytes each, in order: every event in
// exactly one array, consecutive events packed together. An event whose array alone exceeds
// limit is an *OversizeEventError. It costs one copy of the events.
func SplitBatch(events []event.Event, limit int) ([][]byte, error) {
	var parts [][]byte
	var cur []byte
	for i := range events {
		raw, err := eventJSON(&events[i])
		if err != nil {
			return nil, err
		}
		if len(raw)+2 > limit {
			return nil, &OversizeEventError{Index: i, Size: len(raw) + 2, Limit: limit}
		}
		if len(cur) > 0 && len(cur)+1+len(raw)+1 > limit {
			parts = append(parts, append(cur, ']'))
			cur = nil
		}
		if len(cur) == 0 {
			cur = append(make([]byte, 0, min(limit, 64<<10)), '[')
		} else {
			cur = append(cur, ',')
		}
		cur = append(cur, raw...)
	}
	if len(cur) > 0 {
		parts = append(parts, append(cur, ']'))
	}
	return parts, nil
}

func eventJSON(e *event.Event) ([]byte, error) {
	if len(e.Raw) > 0 {
		return e.Raw, nil
	}
	return e.MarshalJSON()
}

// HeaderSize returns the size in bytes of h as nats.go sends it (0 for no header), which with
// the body's must stay within the server's max_payload.
func HeaderSize(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(textproto.TrimString(v)) + len(": \r\n")
		}
	}
	return n
}
