package cache

import (
	"strings"
)

// Field names of a cache hash. The layout is language-neutral (docs/cache.md): apps in other
// languages read the cache directly with HMGET.
const (
	// FieldCurrentIndex is the invalidation index of the URL: bumped by Invalidate and Bust
	// (HINCRBY), never reset while the hash lives.
	FieldCurrentIndex = "current_index"

	// Per-variant field suffixes, appended to Variant.Prefix().
	suffixIndex     = "index"      // invalidation index the variant was fetched under (decimal)
	suffixStatus    = "status"     // HTTP status of the origin's answer (decimal, 2xx)
	suffixHeaders   = "headers"    // JSON object: header name → value, the headers in StoredHeaders
	suffixBody      = "body"       // raw body bytes
	suffixFetchedAt = "fetched_at" // when the fetch started, Unix milliseconds (decimal)
)

// StoredHeaders are the response headers a cache entry keeps (canonical names). Others are
// dropped: they describe the origin's connection, not the resource.
var StoredHeaders = []string{
	"Cache-Control",
	"Content-Language",
	"Content-Type",
	"Etag",
	"Expires",
	"Last-Modified",
	"Link",
	"Vary",
}

// Variant selects one representation of a URL: the API version (sent as
// Accept: application/json;v=<Version>) and the locale (sent as Accept-Language). The zero
// Variant is the plain application/json representation.
type Variant struct {
	Version string
	Locale  string
}

// Prefix returns the prefix of the variant's hash fields, "v:<version>,l:<locale>," as in the
// gem: the plain variant's body is in field "v:,l:,body", version 2's in "v:2,l:,body".
func (v Variant) Prefix() string {
	return "v:" + v.Version + ",l:" + v.Locale + ","
}

// Accept returns the Accept header value of the variant, as the gem sends it.
func (v Variant) Accept() string {
	if v.Version == "" {
		return "application/json"
	}
	return "application/json;v=" + v.Version
}

func (v Variant) fields() []string {
	p := v.Prefix()
	return []string{p + suffixIndex, p + suffixStatus, p + suffixHeaders, p + suffixBody, p + suffixFetchedAt}
}

// Key returns the Redis key of url's cache hash in namespace ns: "<ns>:cache:{<url>}". The
// braces are a Redis Cluster hash tag, so every script on one URL stays in one slot.
func Key(ns, url string) string {
	return ns + ":cache:{" + url + "}"
}

// URLOfKey returns the URL of a cache key of namespace ns, or "" when key is not one.
func URLOfKey(ns, key string) string {
	rest, ok := strings.CutPrefix(key, ns+":cache:{")
	if !ok || !strings.HasSuffix(rest, "}") {
		return ""
	}
	return rest[:len(rest)-1]
}

// scanPattern is the SCAN MATCH pattern of every cache key of namespace ns, with glob
// characters of ns escaped.
func scanPattern(ns string) string {
	var b strings.Builder
	for _, r := range ns {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String() + ":cache:*"
}
