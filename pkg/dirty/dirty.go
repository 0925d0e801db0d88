package dirty

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/internal/scriptpipe"
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

// reclaimMax is the most expired leases of one bucket one Lease call examines.
const reclaimMax = 10000

// batchesMax is the most batches with expired leases per bucket that one Lease call
// considers (their records are passed to the script as keys); the others wait for the next
// call.
const batchesMax = 100

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
	//go:embed status.lua
	statusSrc string

	leaseScript    = redis.NewScript(leaseSrc)
	leaseURLScript = redis.NewScript(leaseURLSrc)
	completeScript = redis.NewScript(completeSrc)
	releaseScript  = redis.NewScript(releaseSrc)
	renewScript    = redis.NewScript(renewSrc)
	countScript    = redis.NewScript(countSrc)
	statusScript   = redis.NewScript(statusSrc)
)

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
// not been handed on yet, split into Buckets buckets by URL (Bucket). It is safe for
// concurrent use, by any number of processes.
type Map struct {
	rdb     redis.UniversalClient
	ns      string
	onDirty func(url string)
	ttl     time.Duration
	chunk   int
	turn    atomic.Uint32 // rotates which bucket Lease tries first among equals
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
	m := &Map{rdb: rdb, ns: o.Namespace, onDirty: o.OnDirty, ttl: o.LeaseTTL, chunk: 100}
	m.turn.Store(mrand.Uint32())
	return m, nil
}

// keys returns the keys of bucket b.
func (m *Map) keys(b int) Keys { return KeysFor(m.ns, b) }

// Mark adds url to the map (SADD). It reports whether the URL was newly dirty, and only then
// calls the Options.OnDirty hook. A URL that is leased (being handed on) is newly dirty again: it
// changed after the sweeper took it, so it will be handed on once more.
func (m *Map) Mark(ctx context.Context, url string) (bool, error) {
	n, err := m.rdb.SAdd(ctx, KeysOf(m.ns, url).Items, url).Result()
	if err != nil {
		return false, fmt.Errorf("dirty: mark: %w", err)
	}
	if n == 1 && m.onDirty != nil {
		m.onDirty(url)
	}
	return n == 1, nil
}

// Count returns how many URLs are dirty: marked and not yet handed on, leased ones included.
// It runs one script per bucket, all in one pipeline; each script reads its bucket's leases.
func (m *Map) Count(ctx context.Context) (int64, error) {
	calls := make([]scriptpipe.Call, Buckets)
	for b := range calls {
		k := m.keys(b)
		calls[b] = scriptpipe.Call{Keys: []string{k.Items, k.Leases}}
	}
	replies := scriptpipe.Run(ctx, m.rdb, countScript, calls)
	var n int64
	for _, r := range replies {
		res, err := r.Int64Slice()
		if err != nil {
			return 0, fmt.Errorf("dirty: count: %w", err)
		}
		n += res[0]
	}
	return n, nil
}

// Leased returns how many URLs are leased right now (expired leases not yet taken back
// included): one ZCARD per bucket, in one pipeline.
func (m *Map) Leased(ctx context.Context) (int64, error) {
	cmds := make([]*redis.IntCmd, Buckets)
	_, _ = m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for b := range cmds {
			cmds[b] = p.ZCard(ctx, m.keys(b).Leases)
		}
		return nil
	})
	var n int64
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return 0, fmt.Errorf("dirty: leased: %w", err)
		}
		n += c.Val()
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
// commands (SISMEMBER and ZSCORE on the URL's bucket, keys in one hash slot).
func (m *Map) Status(ctx context.Context, url string) (URLStatus, error) {
	var member *redis.BoolCmd
	var score *redis.FloatCmd
	k := KeysOf(m.ns, url)
	_, err := m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		member = p.SIsMember(ctx, k.Items, url)
		score = p.ZScore(ctx, k.Leases, url)
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
// SMEMBERS and one ZRANGE per bucket, in one pipeline: use a limit on a large map), otherwise
// at most limit found by SSCAN, bucket by bucket. The order is unspecified.
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
		cmds := make([]*redis.StringSliceCmd, 0, 2*Buckets)
		_, _ = m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for b := range Buckets {
				cmds = append(cmds, p.SMembers(ctx, m.keys(b).Items), p.ZRange(ctx, m.keys(b).Leases, 0, -1))
			}
			return nil
		})
		for _, c := range cmds {
			if err := c.Err(); err != nil {
				return nil, fmt.Errorf("dirty: list: %w", err)
			}
			add(c.Val())
		}
		return out, nil
	}
	for b := 0; b < Buckets && len(out) < limit; b++ {
		var cursor uint64
		for len(out) < limit {
			page, next, err := m.rdb.SScan(ctx, m.keys(b).Items, cursor, "", int64(min(limit, 1000))).Result()
			if err != nil {
				return nil, fmt.Errorf("dirty: list: %w", err)
			}
			add(page)
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	for b := 0; b < Buckets && len(out) < limit; b++ {
		leased, err := m.rdb.ZRange(ctx, m.keys(b).Leases, 0, int64(limit-len(out))-1).Result()
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
