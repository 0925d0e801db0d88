package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"

	"github.com/nats-io/nats.go"

	"github.com/routemaster-drain/drain/pkg/stream"
)

// WarmRequest is the body of a message on <prefix>.warm: the filter asks the warmers to bring
// URL's cache up to date after an event of Type at T changed it. Index is the URL's
// invalidation index after the filter's bump (the value Invalidate returned): an entry stored
// at Index or later already covers the request.
//
// Type is the event's type when the event was fresh, and WarmRefresh when it was stale: a
// stale event still invalidates (the gem's rule, for publishers whose clocks run behind), but
// its type says nothing about the resource's current state (a late delete must not bust a
// resource updated since), so the warmer asks the origin.
//
// On the wire it is JSON: {"url":"https://…","type":"create|update|delete|refresh","t":<ms>,"index":<n>}.
type WarmRequest struct {
	URL   string `json:"url"`
	Type  string `json:"type"`
	T     int64  `json:"t"`
	Index int64  `json:"index"`
}

// Warm request types.
const (
	WarmCreate = "create"
	WarmUpdate = "update"
	WarmDelete = "delete"
	// WarmRefresh asks for a fetch whatever the resource's state: 2xx stores, 404/410 busts.
	WarmRefresh = "refresh"
)

// ErrBadWarmRequest is wrapped by every validation error of ParseWarmRequest.
var ErrBadWarmRequest = errors.New("bad warm request")

// Validate reports whether r is well formed: an absolute http(s) URL, a known type, and
// non-negative t and index.
func (r WarmRequest) Validate() error {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: url %q must be an absolute http(s) URL", ErrBadWarmRequest, r.URL)
	}
	switch r.Type {
	case WarmCreate, WarmUpdate, WarmDelete, WarmRefresh:
	default:
		return fmt.Errorf("%w: type %q must be create, update, delete or refresh", ErrBadWarmRequest, r.Type)
	}
	if r.T < 0 || r.Index < 0 {
		return fmt.Errorf("%w: t and index must not be negative", ErrBadWarmRequest)
	}
	return nil
}

// ParseWarmRequest decodes and validates a warm request body. It decodes as encoding/json
// does; the form WarmMsg writes is decoded without reflection (BenchmarkParseWarmRequest:
// 3.6 times faster, validation included, on the 2-core bench machine), any
// other by encoding/json itself.
func ParseWarmRequest(body []byte) (WarmRequest, error) {
	r, ok := parseWarm(body)
	if !ok {
		r = WarmRequest{}
		if err := json.Unmarshal(body, &r); err != nil {
			return r, fmt.Errorf("%w: %v", ErrBadWarmRequest, err)
		}
	}
	return r, r.Validate()
}

// parseWarm decodes the subset of JSON that json.Marshal writes for a WarmRequest: one object
// holding each of the keys url, type, t and index at most once, spelled in lower case, with
// ASCII strings (escapes of ASCII characters allowed) and integers of int64 range, and
// whitespace anywhere JSON allows it. It reports false for anything else, valid JSON or not,
// and ParseWarmRequest then leaves the body to encoding/json, so the result is always the one
// json.Unmarshal gives (FuzzParseWarmRequest compares them).
func parseWarm(b []byte) (WarmRequest, bool) {
	var r WarmRequest
	p := warmParser{b: b}
	if !p.byte('{') {
		return r, false
	}
	var seen [4]bool
	if p.peek('}') {
		p.i++
		return r, p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return r, false
		}
		var field int
		switch key {
		case "url":
			field = 0
			r.URL, ok = p.str()
		case "type":
			field = 1
			r.Type, ok = p.str()
		case "t":
			field = 2
			r.T, ok = p.int()
		case "index":
			field = 3
			r.Index, ok = p.int()
		default:
			return r, false
		}
		if !ok || seen[field] {
			return r, false
		}
		seen[field] = true
		if p.byte(',') {
			continue
		}
		if !p.byte('}') {
			return r, false
		}
		return r, p.end()
	}
}

type warmParser struct {
	b []byte
	i int
}

func (p *warmParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

// peek reports whether the next byte after whitespace is c.
func (p *warmParser) peek(c byte) bool {
	p.space()
	return p.i < len(p.b) && p.b[p.i] == c
}

// byte consumes c after whitespace.
func (p *warmParser) byte(c byte) bool {
	if !p.peek(c) {
		return false
	}
	p.i++
	return true
}

// end reports whether only whitespace is left.
func (p *warmParser) end() bool {
	p.space()
	return p.i == len(p.b)
}

// str reads a string of printable ASCII, with escapes of ASCII characters.
func (p *warmParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\':
			return p.escaped(start)
		case c < 0x20 || c >= 0x80:
			return "", false
		}
		p.i++
	}
	return "", false
}

// escaped finishes a string that started at start and holds an escape at p.i.
func (p *warmParser) escaped(start int) (string, bool) {
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c < 0x20 || c >= 0x80:
			return "", false
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return "", false
		}
		switch e := p.b[p.i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if p.i+6 > len(p.b) {
				return "", false
			}
			n, ok := hex4(p.b[p.i+2 : p.i+6])
			if !ok || n >= 0x80 {
				return "", false
			}
			out = append(out, byte(n))
			p.i += 4
		default:
			return "", false
		}
		p.i += 2
	}
	return "", false
}

// int reads an integer in int64 range, without fraction or exponent.
func (p *warmParser) int() (int64, bool) {
	p.space()
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	digits := p.i
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var n uint64
	for ; p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9'; p.i++ {
		d := uint64(p.b[p.i] - '0')
		if n > (limit-d)/10 {
			return 0, false
		}
		n = 10*n + d
	}
	if p.i == digits || (p.b[digits] == '0' && p.i > digits+1) {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	if neg {
		return -int64(n-1) - 1, true // -(1<<63) included
	}
	return int64(n), true
}

// hex4 decodes four hexadecimal digits.
func hex4(b []byte) (uint16, bool) {
	var n uint16
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint16(c)
	}
	return n, true
}

// WarmMsg returns the message that publishes r on subject (Names.Subject(stream.Warm, "")),
// without a Nats-Msg-Id (stream.NoMsgID): the filter never publishes one body twice, because
// each delivery of a batch invalidates again and so carries a new Index, and an id would only
// make JetStream keep an entry per warm request for the whole duplicate window (1.2 million
// entries at 10,000 warm requests/s and the default 2 minutes). A request stored twice (a
// publish of the same message retried by hand) costs an extra refetch at most, which is
// harmless: the newest index wins, and a covered request is acked without a fetch.
func WarmMsg(subject string, r WarmRequest) (*nats.Msg, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subject)
	m.Data = body
	return stream.NoMsgID(m), nil
}
