package event

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseError says why a batch was rejected. Index is the position of the first bad event in
// the batch, or -1 when the batch as a whole is not a JSON array of objects; Field names the
// offending field when there is one.
type ParseError struct {
	Index int
	Field string
	Msg   string
}

func (e *ParseError) Error() string {
	switch {
	case e.Index < 0:
		return e.Msg
	case e.Field == "":
		return fmt.Sprintf("event %d: %s", e.Index, e.Msg)
	default:
		return fmt.Sprintf("event %d: %s: %s", e.Index, e.Field, e.Msg)
	}
}

// maxDepth bounds how deeply data objects may nest, so a hostile body cannot exhaust the stack.
const maxDepth = 64

// MaxTopicLength is the longest topic accepted; the bus allows 64 characters.
const MaxTopicLength = 64

// Parse decodes a batch: a JSON array of event objects. It reads the body once; each returned
// Event's Raw aliases body, so body must not be modified while the events are in use.
//
// Rules (docs/ingest.md): topic is a non-empty string of letters, digits, '_' or '-' (it becomes a
// NATS subject token); type is create, update, delete or noop; url is an absolute http(s) URL;
// t is a non-negative JSON number of milliseconds (fractions are truncated); data, when present
// and not null, is an object. Unknown fields are kept in Raw. Duplicate keys: the last wins.
func Parse(body []byte) ([]Event, error) {
	return ParseAppend(make([]Event, 0, 1+len(body)/128), body)
}

// ParseAppend is Parse appending the events to dst, so a caller that parses many batches can
// reuse one slice. On error it returns nil; dst's spare capacity may have been written.
func ParseAppend(dst []Event, body []byte) ([]Event, error) {
	return parseAppend(dst, body, true)
}

// ScanAppend is ParseAppend for a caller that forwards the events' Raw bytes rather than
// reading their URLs (ingest): it applies every rule Parse applies, the URL check included, and
// fills every field but URL, which it leaves empty, so that a batch costs no allocation per
// event. It accepts and rejects exactly the batches Parse does, with the same errors.
func ScanAppend(dst []Event, body []byte) ([]Event, error) {
	return parseAppend(dst, body, false)
}

func parseAppend(dst []Event, body []byte, urls bool) ([]Event, error) {
	s := scanner{b: body, urls: urls}
	s.ws()
	if !s.eat('[') {
		if s.i >= len(s.b) {
			return nil, &ParseError{Index: -1, Msg: "empty body: expected a JSON array of events"}
		}
		if err := s.skipValue(0); err != nil {
			return nil, err
		}
		return nil, &ParseError{Index: -1, Msg: "body must be a JSON array of events"}
	}
	events := dst
	s.ws()
	if s.eat(']') {
		return events, s.end()
	}
	for idx := 0; ; idx++ {
		s.ws()
		start := s.i
		if s.peek() != '{' {
			if err := s.skipValue(0); err != nil {
				return nil, err
			}
			return nil, &ParseError{Index: idx, Msg: "must be a JSON object"}
		}
		// The event is decoded in place, in the slot append would fill.
		if len(events) == cap(events) {
			events = append(events, Event{})
		} else {
			events = events[:len(events)+1]
		}
		ev := &events[len(events)-1]
		if err := s.object(idx, ev); err != nil {
			return nil, err
		}
		ev.Raw = body[start:s.i:s.i]
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat(']') {
			return events, s.end()
		}
		return nil, s.syntax("expected ',' or ']' after an event")
	}
}

// parseEvent parses a single event object (used by Event.UnmarshalJSON).
func parseEvent(b []byte, idx int) (Event, error) {
	s := scanner{b: b, urls: true}
	if s.peek() != '{' {
		return Event{}, &ParseError{Index: idx, Msg: "must be a JSON object"}
	}
	var ev Event
	if err := s.object(idx, &ev); err != nil {
		return Event{}, err
	}
	if err := s.end(); err != nil {
		return Event{}, err
	}
	ev.Raw = b
	return ev, nil
}

type span struct{ start, end int }

type scanner struct {
	b       []byte
	i       int
	urls    bool // fill Event.URL
	nTopics int
	topics  [maxInterned]string // interned topics of this batch
}

func (s *scanner) syntax(msg string) error {
	return &ParseError{Index: -1, Msg: fmt.Sprintf("malformed JSON at byte %d: %s", s.i, msg)}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) ws() {
	if s.i < len(s.b) && s.b[s.i] > ' ' { // the usual case: compact JSON
		return
	}
	s.skipWS()
}

func (s *scanner) skipWS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return s.syntax("unexpected data after the top-level value")
	}
	return nil
}

// The five keys an event's fields are read from, as indexes of object's field table.
const (
	keyTopic = iota
	keyType
	keyURL
	keyT
	keyData
	nKeys
)

// knownKey returns the index of the field key names, or -1 for any other key. Keys match as
// encoding/json matches them: case-insensitively. None of the five names holds a letter with
// a non-ASCII case fold (k, s), so ASCII folding is exact, and a key that is not one of them
// never folds to one of them.
func knownKey(key []byte) int {
	switch len(key) {
	case 1:
		if key[0]|0x20 == 't' {
			return keyT
		}
	case 3:
		if asciiEqualFold(key, "url") {
			return keyURL
		}
	case 4:
		if asciiEqualFold(key, "type") {
			return keyType
		}
		if asciiEqualFold(key, "data") {
			return keyData
		}
	case 5:
		if asciiEqualFold(key, "topic") {
			return keyTopic
		}
	}
	return -1
}

// quickKey matches the start of b against the five keys as the bus writes them, quoted,
// lower case, without escapes and followed by ':': it returns the key's index and length with
// its quotes and colon, or a length of 0 when b does not start with one of them (the key is
// then scanned by str).
func quickKey(b []byte) (int, int) {
	if len(b) < 8 {
		return -1, 0
	}
	w := binary.LittleEndian.Uint64(b)
	switch {
	case w&0xffff_ffff == qT:
		return keyT, 4
	case w == qTopic:
		return keyTopic, 8
	case w&0xff_ffff_ffff_ffff == qType:
		return keyType, 7
	case w&0xffff_ffff_ffff == qURL:
		return keyURL, 6
	case w&0xff_ffff_ffff_ffff == qData:
		return keyData, 7
	}
	return -1, 0
}

// The five quoted keys and their colon as little-endian words, for quickKey.
var qT, qTopic, qType, qURL, qData = le(`"t":`), le(`"topic":`), le(`"type":`), le(`"url":`), le(`"data":`)

func le(s string) uint64 {
	var b [8]byte
	copy(b[:], s)
	return binary.LittleEndian.Uint64(b[:])
}

// quickMillis reads t when it is a plain integer from 1 and of at most 18 digits (what the
// bus sends), scanning it: the value parseMillis would return. It reports false, having
// consumed nothing, for any other number.
func (s *scanner) quickMillis() (int64, bool) {
	b := s.b
	var n int64
	j := s.i
	for ; j < len(b) && isDigit(b[j]); j++ {
		if j-s.i == 18 {
			return 0, false
		}
		n = n*10 + int64(b[j]-'0')
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, false
	}
	s.i = j
	return n, true
}

// field is where one of the five keys' value is in the body.
type field struct {
	key  []byte // the key as it was written (unescaped), for the duplicate-key error
	v    span   // the value, quotes included for a string
	esc  bool   // the value is a string with escapes
	have bool
	ms   int64 // t read while scanning it (quickMillis), 0 when it was not
}

// object parses one event object starting at '{', validates its fields and stores them in
// *ev (all but Raw).
func (s *scanner) object(idx int, ev *Event) error {
	s.i++ // '{'
	var fields [nKeys]field
	var seen [8][]byte // the other keys of this event so far, to refuse duplicates and case variants
	others := seen[:0]
	s.ws()
	if !s.eat('}') {
		for {
			s.ws()
			if s.peek() != '"' {
				return s.syntax("expected a string key")
			}
			var key []byte
			k := -1
			if qk, n := quickKey(s.b[s.i:]); n > 0 {
				key, k = s.b[s.i+1:s.i+n-2], qk
				s.i += n // past the ':'
			} else {
				ks, esc, err := s.str()
				if err != nil {
					return err
				}
				key = s.b[ks.start:ks.end]
				if esc {
					var k string
					if json.Unmarshal(s.b[ks.start-1:ks.end+1], &k) == nil {
						key = []byte(k)
					}
				}
				k = knownKey(key)
				s.ws()
				if !s.eat(':') {
					return s.syntax("expected ':' after a key")
				}
			}
			s.ws()
			vs := s.i
			vesc := false
			var ms int64
			var err error
			switch c := s.peek(); {
			case k >= 0 && c == '"':
				_, vesc, err = s.str()
			case k == keyT && '1' <= c && c <= '9':
				var ok bool
				if ms, ok = s.quickMillis(); !ok {
					err = s.skipValue(0)
				}
			default:
				err = s.skipValue(0)
			}
			if err != nil {
				return err
			}
			// A duplicate (or case variant) of one of the five keys is found in its slot;
			// any other key can only repeat another key that is not one of the five.
			if k >= 0 {
				f := &fields[k]
				if f.have {
					return duplicateKey(idx, key, f.key)
				}
				// Field by field: a composite literal is built on the stack and copied.
				f.key, f.v, f.esc, f.have, f.ms = key, span{vs, s.i}, vesc, true, ms
			} else {
				for _, o := range others {
					if bytes.EqualFold(o, key) {
						return duplicateKey(idx, key, o)
					}
				}
				others = append(others, key)
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return s.syntax("expected ',' or '}' in an event")
		}
	}

	topicBytes, err := s.stringBytes(idx, "topic", &fields[keyTopic])
	if err != nil {
		return err
	}
	if !validTopic(topicBytes) {
		return &ParseError{Index: idx, Field: "topic", Msg: fmt.Sprintf("must be 1 to %d letters, digits, '_' or '-'", MaxTopicLength)}
	}
	topic := s.intern(topicBytes)
	typeBytes, err := s.stringBytes(idx, "type", &fields[keyType])
	if err != nil {
		return err
	}
	var typ Type
	switch string(typeBytes) { // no allocation: the four constants are reused
	case "create":
		typ = Create
	case "update":
		typ = Update
	case "delete":
		typ = Delete
	case "noop":
		typ = Noop
	default:
		return &ParseError{Index: idx, Field: "type", Msg: "must be one of create, update, delete, noop"}
	}
	urlBytes, err := s.stringBytes(idx, "url", &fields[keyURL])
	if err != nil {
		return err
	}
	if !validURL(urlBytes) {
		return &ParseError{Index: idx, Field: "url", Msg: "must be an absolute http(s) URL"}
	}
	t := &fields[keyT]
	if !t.have || s.b[t.v.start] == 'n' {
		return &ParseError{Index: idx, Field: "t", Msg: "is required"}
	}
	ms := t.ms
	if ms == 0 {
		if ms, err = parseMillis(s.b[t.v.start:t.v.end]); err != nil {
			return &ParseError{Index: idx, Field: "t", Msg: err.Error()}
		}
	}
	var data []byte
	if d := &fields[keyData]; d.have {
		switch s.b[d.v.start] {
		case '{':
			data = s.b[d.v.start:d.v.end:d.v.end]
		case 'n': // null: the bus never sends it; treat it as absent
		default:
			return &ParseError{Index: idx, Field: "data", Msg: "must be a JSON object"}
		}
	}
	var u string
	if s.urls {
		u = string(urlBytes)
	}
	// Every field but Raw (the caller's), one by one (see above).
	ev.Topic, ev.Type, ev.URL, ev.T, ev.Data = topic, typ, u, ms, data
	return nil
}

func duplicateKey(idx int, key, earlier []byte) error {
	return &ParseError{Index: idx, Field: string(key),
		Msg: fmt.Sprintf("duplicate key (%q is the same key: keys match case-insensitively)", earlier)}
}

// stringBytes returns the unescaped contents of a string field: a slice of the body when the
// string has no escapes.
func (s *scanner) stringBytes(idx int, name string, f *field) ([]byte, error) {
	if !f.have || s.b[f.v.start] == 'n' {
		return nil, &ParseError{Index: idx, Field: name, Msg: "is required"}
	}
	if s.b[f.v.start] != '"' {
		return nil, &ParseError{Index: idx, Field: name, Msg: "must be a string"}
	}
	if f.esc {
		var out string
		if err := json.Unmarshal(s.b[f.v.start:f.v.end], &out); err != nil {
			return nil, &ParseError{Index: idx, Field: name, Msg: "bad string"}
		}
		return []byte(out), nil
	}
	return s.b[f.v.start+1 : f.v.end-1], nil
}

// maxInterned bounds the distinct topic strings one Parse shares between events.
const maxInterned = 16

// intern returns b as a string, sharing one allocation between the events of a batch that
// have the same topic.
func (s *scanner) intern(b []byte) string {
	for _, t := range s.topics[:s.nTopics] {
		if t == string(b) {
			return t
		}
	}
	t := string(b)
	if s.nTopics < maxInterned {
		s.topics[s.nTopics] = t
		s.nTopics++
	}
	return t
}

// str scans a string starting at '"' and returns the span of its contents (quotes excluded)
// and whether it contains escapes.
func (s *scanner) str() (span, bool, error) {
	b := s.b
	i := s.i + 1 // past '"'
	start := i
	esc := false
	for {
		// Fast path: skip ordinary ASCII eight bytes at a time. special's lowest set bit is
		// the high bit of the first byte that is not plainChar, so i lands on it.
		for i+8 <= len(b) {
			if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto found
			}
			i += 8
		}
		for i < len(b) && plainChar[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
	found:
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return span{start, i}, esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(b) {
				s.i = i
				return span{}, false, s.syntax("unterminated string")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(b) {
					s.i = i
					return span{}, false, s.syntax("bad \\u escape")
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						s.i = i
						return span{}, false, s.syntax("bad \\u escape")
					}
				}
				i += 5
			default:
				s.i = i
				return span{}, false, s.syntax("bad escape in string")
			}
		case c < 0x20:
			s.i = i
			return span{}, false, s.syntax("control character in string")
		default: // the first byte of a multi-byte UTF-8 sequence
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				s.i = i
				return span{}, false, s.syntax("invalid UTF-8 in string")
			}
			i += size
		}
	}
	s.i = i
	return span{}, false, s.syntax("unterminated string")
}

// special returns a mask with the high bit set of every byte of w (eight string bytes, the
// first in the low byte) that is not plainChar: below 0x20, '"', '\\' or from 0x80 up. Bits
// above the lowest set one may be spurious (borrows), the lowest one is exact.
func special(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	return ((w-ones*0x20)&^w | (q-ones)&^q | (bs-ones)&^bs | w) & highs
}

// plainChar marks the ASCII bytes that may appear in a JSON string without an escape and do
// not end it: everything but control characters, '"' and '\\'. Bytes from 0x80 up start a
// multi-byte UTF-8 sequence, which str validates.
var plainChar = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// asciiEqualFold reports whether key equals name (lower-case ASCII) ignoring ASCII case.
func asciiEqualFold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range key {
		if c := key[i]; c|0x20 != name[i] || !('a' <= c|0x20 && c|0x20 <= 'z') {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipValue validates and skips any JSON value.
func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth {
		return s.syntax("nested too deeply")
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		s.i++
		s.ws()
		if s.eat('}') {
			return nil
		}
		for {
			s.ws()
			if s.peek() != '"' {
				return s.syntax("expected a string key")
			}
			if _, _, err := s.str(); err != nil {
				return err
			}
			s.ws()
			if !s.eat(':') {
				return s.syntax("expected ':' after a key")
			}
			s.ws()
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				return nil
			}
			return s.syntax("expected ',' or '}' in an object")
		}
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return nil
		}
		for {
			s.ws()
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat(']') {
				return nil
			}
			return s.syntax("expected ',' or ']' in an array")
		}
	case c == '-' || isDigit(c):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == 0 && s.i >= len(s.b):
		return s.syntax("unexpected end of input")
	default:
		return s.syntax("unexpected character")
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.syntax("bad literal")
	}
	s.i += len(lit)
	return nil
}

func (s *scanner) number() error {
	s.eat('-')
	switch {
	case s.eat('0'):
	case isDigit(s.peek()):
		for isDigit(s.peek()) {
			s.i++
		}
	default:
		return s.syntax("bad number")
	}
	if s.eat('.') {
		if !isDigit(s.peek()) {
			return s.syntax("bad number")
		}
		for isDigit(s.peek()) {
			s.i++
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !isDigit(s.peek()) {
			return s.syntax("bad number")
		}
		for isDigit(s.peek()) {
			s.i++
		}
	}
	return nil
}

// parseMillis converts a JSON value that must be a number into whole milliseconds.
func parseMillis(b []byte) (int64, error) {
	if len(b) == 0 || !(b[0] == '-' || isDigit(b[0])) {
		return 0, fmt.Errorf("must be a number of milliseconds")
	}
	if len(b) <= 18 { // fast path: a plain integer that cannot overflow
		var n int64
		i := 0
		for ; i < len(b) && isDigit(b[i]); i++ {
			n = n*10 + int64(b[i]-'0')
		}
		if i == len(b) {
			return n, nil
		}
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("must not be negative")
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || f >= math.MaxInt64 {
		return 0, fmt.Errorf("out of range")
	}
	if f < 0 {
		return 0, fmt.Errorf("must not be negative")
	}
	return int64(f), nil
}

// ValidTopic reports whether t is a valid topic name: 1 to MaxTopicLength ASCII letters,
// digits, '_' or '-' (so that it is a single NATS subject token).
func ValidTopic(t string) bool { return validTopic([]byte(t)) }

func validTopic(t []byte) bool {
	if len(t) == 0 || len(t) > MaxTopicLength {
		return false
	}
	for _, c := range t {
		if !topicChar[c] {
			return false
		}
	}
	return true
}

// topicChar marks the bytes of a topic: ASCII letters, digits, '_' and '-'.
var topicChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isAlnum(byte(c)) || c == '_' || c == '-'
	}
	return t
}()

func validURL(s []byte) bool {
	if len(s) < len("http://x") {
		return false
	}
	n := schemeLen(s)
	if n == 0 {
		return false
	}
	if plainURL(s, n) {
		return true
	}
	u, err := url.Parse(string(s))
	return err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https")
}

// schemeLen returns the length of the http:// or https:// (in any case) that s, at least 8
// bytes long, starts with, or 0.
func schemeLen(s []byte) int {
	// c|0x20 folds exactly the two cases of a letter: no other byte maps to it.
	if s[0]|0x20 != 'h' || s[1]|0x20 != 't' || s[2]|0x20 != 't' || s[3]|0x20 != 'p' {
		return 0
	}
	switch {
	case s[4] == ':' && s[5] == '/' && s[6] == '/':
		return len("http://")
	case s[4]|0x20 == 's' && s[5] == ':' && s[6] == '/' && s[7] == '/':
		return len("https://")
	}
	return 0
}

// plainURL is validURL's fast path for the URLs the bus carries: a non-empty host name of
// letters, digits, '.', '-', '_' or '~', an optional numeric port, and a path, query and
// fragment of unreserved and sub-delimiter characters without escapes. Every URL it accepts
// url.Parse accepts with that host; anything else goes to url.Parse. The scheme, http:// or
// https://, is s[:i].
func plainURL(s []byte, i int) bool {
	hostStart := i
	for i+8 <= len(s) && hostChar[s[i]]&hostChar[s[i+1]]&hostChar[s[i+2]]&hostChar[s[i+3]]&
		hostChar[s[i+4]]&hostChar[s[i+5]]&hostChar[s[i+6]]&hostChar[s[i+7]] != 0 {
		i += 8
	}
	for i < len(s) && hostChar[s[i]] != 0 {
		i++
	}
	if i == hostStart {
		return false
	}
	if i < len(s) && s[i] == ':' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && s[i] != '/' && s[i] != '?' && s[i] != '#' {
		return false
	}
	p := s[i:]
	for len(p) >= 8 {
		if pathChar[p[0]]&pathChar[p[1]]&pathChar[p[2]]&pathChar[p[3]]&
			pathChar[p[4]]&pathChar[p[5]]&pathChar[p[6]]&pathChar[p[7]] == 0 {
			return false
		}
		p = p[8:]
	}
	for _, c := range p {
		if pathChar[c] == 0 {
			return false
		}
	}
	return true
}

// hostChar and pathChar are 1 for the bytes plainURL accepts in a host name and after it.
var hostChar, pathChar = func() (host, path [256]uint8) {
	for c := range 256 {
		b := byte(c)
		if isAlnum(b) || strings.IndexByte(".-_~", b) >= 0 {
			host[c] = 1
		}
		if isAlnum(b) || strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", b) >= 0 {
			path[c] = 1
		}
	}
	return host, path
}()

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) }
