// Package reorder is the drain's reordering filter (the gem's Dirty::Filter), made atomic: every
// URL of a batch is checked against, and advances, its state in a Redis Lua script, so any
// number of filters may run at once, and a batch costs one round trip (a pipeline) whatever its
// size.
//
// An event is fresh only when its t is strictly greater than the newest t stored for its URL;
// the event type plays no part (a noop advances the state like any other event). A batch yields
// one event per URL, the newest, in the order each URL was first kept:
//
//	f, err := reorder.New(rdb, reorder.Options{}) // namespace "rm", state TTL 90 days
//	res, err = f.Run(ctx, msgSeq, events, true)
//	// res.Fresh: hand these on; res.NewlyDirty: URLs added to the dirty set by this batch
//
// State is one key per URL, <ns>:dirtymap:{<tag>}:state:<url> (StateKey), in the URL's bucket
// of the dirty map (dirty.Bucket) beside that bucket's dirty set, holding JSON
// {"t":<ms>,"seq":<n>} with TTL = Options.TTL (ROUTEMASTER_CACHE_EXPIRY in the services), refreshed whenever the URL advances.
// seq is the stream sequence of the batch that wrote it: a redelivered batch (same seq) whose
// URLs nobody moved on since gets the same fresh events again, so a crash between Run and the
// hand-off loses nothing (see Filter.Run and docs/filter.md).
//
// Run splits a batch by bucket and runs one script per bucket, each on its bucket's keys only
// (one hash slot, every key in KEYS), all in one pipeline; on Redis Cluster the buckets, and so
// the filter's work, spread over the masters. Every URL is atomic; the results are merged back
// into the batch's first-kept order.
//
// ReadState reads one URL's state (drainctl state and the chaos checks use it).
package reorder
