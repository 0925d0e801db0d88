package dirty

import "github.com/cespare/xxhash/v2"

// Buckets is how many buckets the dirty map (and the filter state, which lives beside it) of
// a namespace is split into. Each bucket has its own hash tag, so on Redis Cluster the
// buckets spread over the masters and the filter and the sweepers use all of them.
//
// Why 16: every bucket a batch touches costs one script call (one EVALSHA, about 4 µs of
// Redis time on top of the work per event), so a 100-event batch costs about 16 calls here
// and would cost about 51 with 64 buckets; and a sweeper's batch holds the URLs of one
// bucket, so fewer buckets make fuller batches. 16 buckets whose tags are spread evenly over
// the slot space (BucketTag) give every master of a cluster of up to 8 masters with evenly
// assigned slots at least 2 buckets and at most one bucket more than another; beyond 16
// masters the extra ones get no filter work. The number is part of the key layout: changing
// it moves every URL to another bucket (docs/redis.md).
const Buckets = 16

// bucketTags are the hash tags of the buckets. Tag i is "b<ii>.<n>" with the smallest n ≥ 0
// whose Redis Cluster slot (CRC16-XMODEM of the tag mod 16384) lies in [i·1024, (i+1)·1024),
// so the 16 buckets cover the slot space evenly whatever the namespace.
var bucketTags = [Buckets]string{
	"b00.63", "b01.60", "b02.0", "b03.3", "b04.13", "b05.10", "b06.20", "b07.23",
	"b08.43", "b09.40", "b10.63", "b11.60", "b12.42", "b13.41", "b14.13", "b15.10",
}

// Bucket returns the bucket of url: XXH64 of the URL's bytes exactly as received (seed 0)
// mod Buckets, that is, its lowest 4 bits. Apps in other languages compute it the same way
// (any xxHash64 library) to find a URL's keys. It costs one hash of the URL.
func Bucket(url string) int { return int(xxhash.Sum64String(url) % Buckets) }

// BucketTag returns the hash tag of bucket b (0 ≤ b < Buckets), without braces: "b07.23".
// Keys of one bucket share it, so a script may touch them together on Redis Cluster.
func BucketTag(b int) string { return bucketTags[b] }

// Keys are the Redis keys of one bucket of one namespace's dirty map. They share the hash tag
// {BucketTag(bucket)}, so one script may touch them together on Redis Cluster.
type Keys struct {
	Items  string // SET of dirty URLs, no TTL (the gem's dirtymap:items)
	Leases string // ZSET leased URL -> lease expiry in ms (Redis clock), no TTL
	Owners string // HASH leased URL -> lease token, no TTL
	Batch  string // prefix of batch records: Batch+<batch id> is the SET of a lease's URLs
	State  string // prefix of the filter's state keys: State+<url> (pkg/reorder writes them)
}

// KeysFor returns the keys of bucket b (0 ≤ b < Buckets) of namespace ns:
// <ns>:dirtymap:{<tag>}:items, :leases, :owners, :lease:<batch id> and :state:<url>.
func KeysFor(ns string, b int) Keys {
	p := ns + ":dirtymap:{" + bucketTags[b] + "}:"
	return Keys{Items: p + "items", Leases: p + "leases", Owners: p + "owners", Batch: p + "lease:", State: p + "state:"}
}

// KeysOf returns the keys of url's bucket in namespace ns.
func KeysOf(ns, url string) Keys { return KeysFor(ns, Bucket(url)) }

// LegacyKeys returns the keys of the layout before buckets, {ns}:dirtymap:…, all under one
// hash tag. Nothing writes them any more; Map.Migrate moves what they hold.
func LegacyKeys(ns string) Keys {
	p := "{" + ns + "}:dirtymap:"
	return Keys{Items: p + "items", Leases: p + "leases", Owners: p + "owners", Batch: p + "lease:", State: p + "state:"}
}
