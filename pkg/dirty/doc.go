// Package dirty is the drain's dirty map: the set of URLs whose resources changed and have not
// been handed on yet (the gem's Routemaster::Dirty::Map), made safe for many sweepers and for
// crashes.
//
// The filter marks a URL dirty when a fresh create/update/delete arrives for it; apps (or the
// sweeper service) sweep the map later and learn each changed URL once, however many events
// arrived for it in between:
//
//	m, err := dirty.New(rdb, dirty.Options{OnDirty: func(url string) { log.Println("dirty", url) }})
//	m.Mark(ctx, "https://orders.example.com/api/orders/1")
//	err = m.Sweep(ctx, 0, func(url string) (bool, error) {
//		return refresh(url) == nil, nil // true: done, the URL leaves the map
//	})
//
// # Semantics kept from the gem
//
// Mark is a SADD and reports whether the URL was newly dirty; only then does the
// Options.OnDirty hook run. Sweep(limit ≤ 0) is unlimited; a false result, an error or a
// panic puts the URL back, after the sweep, so no URL is yielded twice in one sweep. SweepOne
// runs its function even for a URL that is not dirty. Order is random.
//
// New takes the Redis client and an Options value whose zero value is the gem's map
// (namespace "rm", leases of DefaultLeaseTTL); it does not read the environment.
//
// # What is better than the gem
//
// The gem pops URLs (SPOP) before yielding them, so a process that dies mid-sweep loses them.
// Here URLs are leased: one Lua script moves them from a dirty set into a lease set (scored by
// lease expiry, by the Redis clock) under an owner token, and they leave the map only when the
// holder confirms the hand-off (Complete). An expired lease goes back into the map at a later
// Lease call of any process. Two holders never lease the same URL at once: a URL marked again
// while leased stays in the dirty set but is not leased again until the first lease ends; then
// it is handed on once more, since it changed again. A holder whose lease expired cannot
// complete or release the new holder's lease.
//
// A batch whose holder died between leasing and completing is leased again whole, under the
// same batch id (Token.Batch) with a higher generation: a hand-off keyed on the batch id and
// the content, like the sweeper's Nats-Msg-Id, then repeats the dead holder's message exactly
// and the receiver can drop the copy. When several holders died, each batch is taken over
// whole by its own Lease call; taking over one never breaks up another.
//
// Sweep renews the leases it holds every third of the lease TTL, so a slow sweep function
// keeps its URLs; a lease lost anyway is reported through ErrLeaseLost.
//
// Count, Leased, List and Status (one URL: marked, leased, until when) only read the map.
//
// # Buckets and Redis Cluster
//
// The map is split into Buckets (16) buckets by URL: Bucket(url) is XXH64 of the URL mod 16,
// and each bucket's keys share a hash tag of their own (KeysFor), spread evenly over the
// cluster's slot space. On Redis Cluster the map, and the filter state kept beside it, thus
// spread over the masters. A lease holds URLs of one bucket, so that leasing, taking over,
// renewing and completing stay one atomic script each, on one slot, with every key it touches
// passed in KEYS. Lease looks at every bucket first (one script each, in one pipeline) and
// leases from one with expired leases, otherwise from the one with the most free URLs; Count,
// Leased, List and NextExpiry combine all buckets; Complete, Release and Renew group their URLs
// by bucket. Every multi-bucket operation sends its scripts in one pipeline.
//
// Lease, Complete, Release and Renew are the batch API the sweeper service uses; Sweep and
// SweepOne are the gem's API built on them. Migrate moves the keys of the layout before buckets
// (LegacyKeys, one hash tag per namespace) into the buckets. See docs/redis.md for the key
// layout.
package dirty
