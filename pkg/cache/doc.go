// Package cache is the drain's HTTP representation cache in Redis: read-through Get, parallel
// GetMany and futures, race-safe Invalidate and Bust, and the FixTTL repair task.
//
// Each URL has one Redis hash, "<ns>:cache:{<url>}" (docs/cache.md gives the full layout for
// apps in other languages). Its field current_index is the URL's invalidation index; every
// stored variant (API version × locale) records the index it was fetched under and is served
// only while that equals current_index. A fetch reads current_index before it starts and
// stores with one Lua script only if the index has not moved, so an answer that raced an
// invalidation is never served as fresh and never overwrites a newer one:
//
//	c, _ := cache.New(rdb, cache.Options{Fetcher: f}) // namespace "rm", 90-day expiry: the defaults
//	r, err := c.Get(ctx, "https://api.example.com/orders/1", cache.Variant{Version: "2"})
//	idx, err := c.Invalidate(ctx, "https://api.example.com/orders/1") // what the filter runs
//
// Unlike the gem, the index is per variant (fixing cross-variant staleness), Bust keeps and
// bumps the index instead of deleting the hash, and the status code is stored and replayed.
package cache
