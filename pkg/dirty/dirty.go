package dirty

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "embed"

	"github.com/redis/go-redis/v9"
)

// ErrLeased is returned by SweepOne when another holder's lease on the URL is still running.
var ErrLeased = errors.New("dirty: URL is leased by another sweeper")

// ErrStop, returned by a sweep function, ends Sweep early without an error. The URL it was
// called with is removed when the function also returned true, and put back otherwise.
var ErrStop = errors.New("dirty: stop sweeping")

// ErrPanicked wraps the value of a panic in a sweep function; the URL was put back.
var ErrPanicked = errors.New("dirty: sweep function panicked")

// ErrLeaseLost is wrapped by the error of a Sweep during which another holder took URLs whose
// lease the sweep held (the process or Redis stalled for longer than the lease TTL).
var ErrLeaseLost = errors.New("dirty: lease lost")

// recordTTL bounds how long a batch record outlives its last renewal. A record only serves to
// re-lease a dead holder's batch whole; when it is gone the URLs still return one by one.
const recordTTL = 24 * time.Hour

// reclaimMax is the most expired leases one Lease call takes back.
const reclaimMax = 10000

var (
	//go:embed lease.lua
	leaseSrc string
	//go:embed lease_url.lua
	leaseURLSrc string
	//go:embed complete.lua
	completeSrc string
	//go:embed release.lua
	releaseSrc string
	//go:embed renew.lua
	renewSrc string
	//go:embed count.lua
	countSrc string
	//go:embed next_expiry.lua
	nextExpirySrc string

	leaseScript      = redis.NewScript(leaseSrc)
	leaseURLScript   = redis.NewScript(leaseURLSrc)
	completeScript   = redis.NewScript(completeSrc)
	releaseScript    = redis.NewScript(releaseSrc)
	renewScript      = redis.NewScript(renewSrc)
	countScript      = redis.NewScript(countSrc)
	nextExpiryScript = redis.NewScript(nextExpirySrc)
)

// Keys are the Redis keys of one namespace's dirty map. They share the hash tag {ns}, so the
// scripts work on Redis Cluster.
type Keys struct {
	Items  string // SET of dirty URLs, no TTL (the gem's dirtymap:items)
	Leases string // ZSET leased URL -> lease expiry in ms (Redis clock), no TTL
	Owners string // HASH leased URL -> lease token, no TTL
	Batch  string // prefix of batch records: Batch+<batch id> is the SET of a lease's URLs
}

// KeysFor returns the keys of namespace ns.
func KeysFor(ns string) Keys {
	p := "{" + ns + "}:dirtymap:"
	return Keys{Items: p + "items", Leases: p + "leases", Owners: p + "owners", Batch: p + "lease:"}
}

// Token identifies one lease: "<batch id>.<generation>". The batch id stays the same when a
// dead holder's whole batch is leased again; the generation grows, so the old holder's token
// no longer completes anything.
type Token string

// Batch returns the batch id of the token: the same for every generation of one batch. Derive
// idempotency keys from it (with the content), never from the full token.
func (t Token) Batch() string {
	if i := strings.LastIndexByte(string(t), '.'); i > 0 {
		return string(t[:i])
	}
	return string(t)
}

// Generation returns how many times the batch was taken over after its lease expired
// (0 for a fresh lease).
func (t Token) Generation() int {
	var g int
	if i := strings.LastIndexByte(string(t), '.'); i > 0 {
		_, _ = fmt.Sscanf(string(t[i+1:]), "%d", &g)
	}
	return g
}

// Map is the dirty map of one Redis namespace: a set of URLs whose resources changed and have
// not been handed on yet. It is safe for concurrent use, by any number of processes.
type Map struct {
	rdb     redis.UniversalClient
	keys    Keys
	onDirty func(url string)
	ttl     time.Duration
	chunk   int
}

// New returns the dirty map on rdb with o (zero fields take the Default* values: the gem's
// namespace "rm", DefaultLeaseTTL, no hook). It fails when rdb is nil or o is invalid.
func New(rdb redis.UniversalClient, o Options) (*Map, error) {
	if rdb == nil {
		return nil, errors.New("dirty: New needs a Redis client")
	}
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Map{rdb: rdb, keys: KeysFor(o.Namespace), onDirty: o.OnDirty, ttl: o.LeaseTTL, chunk: 100}, nil
}

// Keys returns the map's Redis keys.
func (m *Map) Keys() Keys { return m.keys }

// Mark adds url to the map (SADD). It reports whether the URL was newly dirty, and only then
// calls the Options.OnDirty hook. A URL that is leased (being handed on) is newly dirty again: it
// changed after the sweeper took it, so it will be handed on once more.
func (m *Map) Mark(ctx context.Context, url string) (bool, error) {
	n, err := m.rdb.SAdd(ctx, m.keys.Items, url).Result()
	if err != nil {
		return false, fmt.Errorf("dirty: mark: %w", err)
	}
	if n == 1 && m.onDirty != nil {
		m.onDirty(url)
	}
	return n == 1, nil
}

// Count returns how many URLs are dirty: marked and not yet handed on, leased ones included.
func (m *Map) Count(ctx context.Context) (int64, error) {
	res, err := countScript.Run(ctx, m.rdb, []string{m.keys.Items, m.keys.Leases}).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("dirty: count: %w", err)
	}
	return res[0], nil
}

// Leased returns how many URLs are leased right now (expired leases not yet taken back
// included).
func (m *Map) Leased(ctx context.Context) (int64, error) {
	n, err := m.rdb.ZCard(ctx, m.keys.Leases).Result()
	if err != nil {
		return 0, fmt.Errorf("dirty: leased: %w", err)
	}
	return n, nil
}

// URLStatus is where one URL stands in the dirty map.
type URLStatus struct {
	Marked bool // in the dirty set: marked and waiting for a sweep (again, when marked while leased)
	Leased bool // a sweeper holds it and has not confirmed its hand-off (an expired lease included)
	// LeaseExpiry is when the lease ends, by the Redis server's clock; zero when not leased.
	// Past it, the next Lease of any process takes the URL back.
	LeaseExpiry time.Time
}

// Dirty reports whether the URL counts as dirty, as Count counts: marked or leased.
func (s URLStatus) Dirty() bool { return s.Marked || s.Leased }

// Status reads where url stands in the map, without changing anything: one round trip of two
// commands (SISMEMBER and ZSCORE, keys in one hash slot).
func (m *Map) Status(ctx context.Context, url string) (URLStatus, error) {
	var member *redis.BoolCmd
	var score *redis.FloatCmd
	_, err := m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		member = p.SIsMember(ctx, m.keys.Items, url)
		score = p.ZScore(ctx, m.keys.Leases, url)
		return nil
	})
	if err == nil || errors.Is(err, redis.Nil) {
		err = member.Err()
	}
	if err == nil {
		if err = score.Err(); errors.Is(err, redis.Nil) {
			err = nil
		}
	}
	if err != nil {
		return URLStatus{}, fmt.Errorf("dirty: status of %s: %w", url, err)
	}
	s := URLStatus{Marked: member.Val()}
	if ms, err := score.Result(); err == nil {
		s.Leased, s.LeaseExpiry = true, time.UnixMilli(int64(ms))
	}
	return s, nil
}

// List returns dirty URLs, leased ones included, each once: all of them when limit ≤ 0 (one
// SMEMBERS: use a limit on a large map), otherwise at most limit found by SSCAN. The order is
// unspecified.
func (m *Map) List(ctx context.Context, limit int) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(urls []string) {
		for _, u := range urls {
			if !seen[u] && (limit <= 0 || len(out) < limit) {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	if limit <= 0 {
		items, err := m.rdb.SMembers(ctx, m.keys.Items).Result()
		if err != nil {
			return nil, fmt.Errorf("dirty: list: %w", err)
		}
		add(items)
		leased, err := m.rdb.ZRange(ctx, m.keys.Leases, 0, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("dirty: list: %w", err)
		}
		add(leased)
		return out, nil
	}
	var cursor uint64
	for len(out) < limit {
		page, next, err := m.rdb.SScan(ctx, m.keys.Items, cursor, "", int64(min(limit, 1000))).Result()
		if err != nil {
			return nil, fmt.Errorf("dirty: list: %w", err)
		}
		add(page)
		if cursor = next; cursor == 0 {
			break
		}
	}
	if len(out) < limit {
		leased, err := m.rdb.ZRange(ctx, m.keys.Leases, 0, int64(limit)-1).Result()
		if err != nil {
			return nil, fmt.Errorf("dirty: list: %w", err)
		}
		add(leased)
	}
	return out, nil
}

func newBatchID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
