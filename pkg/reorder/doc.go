// Package reorder is the drain's reordering filter (the gem's Dirty::Filter), made atomic: a
// whole batch is checked against, and advances, the per-URL state in one Redis Lua script, so
// any number of filters may run at once and the round trips per batch do not grow with its
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
// State is one key per URL, {ns}:dirtymap:state:<url>, holding JSON {"t":<ms>,"seq":<n>} with
// TTL = Options.TTL (ROUTEMASTER_CACHE_EXPIRY in the services), refreshed whenever the URL
// advances. seq is the stream sequence of the batch that wrote it: a redelivered batch (same
// seq) whose URLs nobody moved on since gets the same fresh events again, so a crash between
// Run and the hand-off loses nothing (see Filter.Run and docs/filter.md).
//
// ReadState reads one URL's state (drainctl state and the chaos checks use it); DirtyKey is the
// dirty map's own set, dirty.KeysFor(ns).Items.
package reorder
