package receiver

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// tokens holds the SHA-256 digests of the configured tokens. Comparing fixed-size digests
// with subtle.ConstantTimeCompare against every token keeps the time of a check independent
// of which token (if any) matched and of the tokens' lengths.
type tokens [][sha256.Size]byte

func newTokens(list []string) tokens {
	ts := make(tokens, 0, len(list))
	for _, t := range list {
		if t = strings.TrimSpace(t); t != "" {
			ts = append(ts, sha256.Sum256([]byte(t)))
		}
	}
	return ts
}

// accepts reports whether user is exactly one of the tokens. An empty user never is.
func (ts tokens) accepts(user []byte) bool {
	if len(user) == 0 {
		return false
	}
	d := sha256.Sum256(user)
	ok := 0
	for i := range ts {
		ok |= subtle.ConstantTimeCompare(d[:], ts[i][:])
	}
	return ok == 1
}

// username returns the Basic-auth username of an Authorization header value; the password is
// ignored. Like the gem it accepts the bus's "Basic base64(token:x)", extra spaces after the
// scheme, a value without a colon, and a bare base64 value without the scheme. Unlike the gem
// the scheme is matched case-insensitively (RFC 7617), unpadded base64 is accepted but invalid
// base64 is not decoded leniently, and anything that does not decode yields no username.
func username(h string, scratch []byte) []byte {
	h = strings.TrimSpace(h)
	if len(h) >= 6 && strings.EqualFold(h[:5], "basic") && (h[5] == ' ' || h[5] == '\t') {
		h = strings.TrimLeft(h[6:], " \t")
	}
	if h == "" {
		return nil
	}
	enc := base64.StdEncoding
	if len(h)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	buf := scratch[:0]
	if n := enc.DecodedLen(len(h)); n > cap(buf) {
		buf = make([]byte, 0, n)
	}
	buf = buf[:enc.DecodedLen(len(h))]
	n, err := enc.Decode(buf, []byte(h))
	if err != nil {
		return nil
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, ':'); i >= 0 {
		buf = buf[:i]
	}
	return buf
}
