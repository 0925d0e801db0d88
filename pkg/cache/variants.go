package cache

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxListedVariants bounds how many variants Variants reads for one URL.
const MaxListedVariants = 1000

// StoredVariant describes one variant stored in a URL's cache hash, without its body.
type StoredVariant struct {
	Variant   Variant
	Index     int64     // the invalidation index it was fetched under
	Status    int       // the origin's status (0 when the field is missing or unreadable)
	FetchedAt time.Time // when the fetch that stored it started (zero when unknown)
	BodyBytes int64     // size of the stored body
}

// Stored is what a URL's cache hash holds: its invalidation index and the variants stored.
type Stored struct {
	Current  int64 // the URL's invalidation index (0 when the URL has no hash)
	Variants []StoredVariant
	TTL      time.Duration // the hash's remaining TTL: -1 without one, 0 when there is no hash
}

// Fresh reports whether v may be served: it was fetched under the URL's current index.
func (s Stored) Fresh(v StoredVariant) bool { return v.Index == s.Current }

// Variants lists the variants stored for url, ordered by version then locale, read-only
// (no fetch, no hook, no metric). It costs two round trips: HKEYS, then one pipeline of an
// HMGET and an HSTRLEN per variant; at most MaxListedVariants variants are read. Only the
// variants with an index field are listed: the fields a store writes together.
func (c *Cache) Variants(ctx context.Context, url string) (Stored, error) {
	key := c.Key(url)
	fields, err := c.rdb.HKeys(ctx, key).Result()
	if err != nil {
		return Stored{}, fmt.Errorf("cache: read %s: %w", url, redisErr(err))
	}
	var variants []Variant
	for _, f := range fields {
		if v, ok := variantOfIndexField(f); ok {
			variants = append(variants, v)
		}
	}
	slices.SortFunc(variants, func(a, b Variant) int {
		if n := strings.Compare(a.Version, b.Version); n != 0 {
			return n
		}
		return strings.Compare(a.Locale, b.Locale)
	})
	variants = variants[:min(len(variants), MaxListedVariants)]

	var current *redis.SliceCmd
	var ttl *redis.DurationCmd
	vals := make([]*redis.SliceCmd, len(variants))
	sizes := make([]*redis.IntCmd, len(variants))
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		current = p.HMGet(ctx, key, FieldCurrentIndex)
		ttl = p.PTTL(ctx, key)
		for i, v := range variants {
			pre := v.Prefix()
			vals[i] = p.HMGet(ctx, key, pre+suffixIndex, pre+suffixStatus, pre+suffixFetchedAt)
			sizes[i] = p.HStrLen(ctx, key, pre+suffixBody)
		}
		return nil
	})
	if err != nil {
		return Stored{}, fmt.Errorf("cache: read %s: %w", url, redisErr(err))
	}
	var s Stored
	if cur, ok := current.Val()[0].(string); ok {
		s.Current, _ = strconv.ParseInt(cur, 10, 64)
	}
	switch d := ttl.Val(); d { // go-redis passes PTTL's -2 (no key) and -1 (no TTL) as they are
	case -2:
	case -1:
		s.TTL = -1
	default:
		s.TTL = d
	}
	for i, v := range variants {
		f := vals[i].Val()
		idx, ok := f[0].(string)
		if !ok {
			continue // deleted between the two round trips
		}
		sv := StoredVariant{Variant: v, BodyBytes: sizes[i].Val()}
		sv.Index, _ = strconv.ParseInt(idx, 10, 64)
		if st, ok := f[1].(string); ok {
			sv.Status, _ = strconv.Atoi(st)
		}
		if at, ok := f[2].(string); ok {
			if ms, err := strconv.ParseInt(at, 10, 64); err == nil {
				sv.FetchedAt = time.UnixMilli(ms)
			}
		}
		s.Variants = append(s.Variants, sv)
	}
	return s, nil
}

// variantOfIndexField returns the variant of a field "v:<version>,l:<locale>,index".
func variantOfIndexField(f string) (Variant, bool) {
	rest, ok := strings.CutPrefix(f, "v:")
	if !ok {
		return Variant{}, false
	}
	rest, ok = strings.CutSuffix(rest, ","+suffixIndex)
	if !ok {
		return Variant{}, false
	}
	version, locale, ok := strings.Cut(rest, ",l:")
	if !ok {
		return Variant{}, false
	}
	return Variant{Version: version, Locale: locale}, true
}
