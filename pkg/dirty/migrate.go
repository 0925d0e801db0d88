package dirty

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/internal/scriptpipe"
)

var (
	//go:embed migrate_state.lua
	migrateStateSrc string
	//go:embed delete_if.lua
	deleteIfSrc string
	//go:embed drop_expired.lua
	dropExpiredSrc string

	migrateStateScript = redis.NewScript(migrateStateSrc)
	deleteIfScript     = redis.NewScript(deleteIfSrc)
	dropExpiredScript  = redis.NewScript(dropExpiredSrc)
)

// MigrateReport counts what Migrate did.
type MigrateReport struct {
	// States is the legacy filter states moved (written into their bucket, or dropped because
	// the bucket already held a state at least as new, or because they were unreadable).
	States int `json:"states"`
	// StatesChanged is the legacy states that changed while being moved (a filter of the
	// legacy layout still runs): they stay, and the next run moves them.
	StatesChanged int `json:"states_changed"`
	// Dirty is the URLs moved from the legacy dirty set into their buckets'.
	Dirty int `json:"dirty"`
	// Leased is the URLs of expired legacy leases moved into their buckets' dirty sets.
	Leased int `json:"leased"`
	// LeasedLeft is the URLs still leased in the legacy layout (a sweeper of that layout holds
	// them): run Migrate again once their leases ended.
	LeasedLeft int64 `json:"leased_left"`
}

// Done reports whether nothing is left in the legacy layout but batch records, which expire
// by themselves within a day.
func (r MigrateReport) Done() bool { return r.StatesChanged == 0 && r.LeasedLeft == 0 }

// Migrate moves what the legacy layout of the map's namespace holds (LegacyKeys: every key
// under the one hash tag {ns}) into the bucketed layout, batch keys at a time (100 when ≤ 0):
//
//   - each filter state {ns}:dirtymap:state:<url> is written to its bucket's state key with
//     its remaining TTL, unless that key already holds a state at least as new (a filter of
//     the new layout moved the URL on), and the legacy key is deleted unless it changed
//     meanwhile;
//   - each URL of the legacy dirty set is added to its bucket's dirty set, then removed from
//     the legacy one;
//   - each URL whose legacy lease has expired is added to its bucket's dirty set, then its
//     lease is dropped unless a sweeper of the legacy layout took it over meanwhile. URLs
//     whose legacy lease still runs are left to their holder and counted in LeasedLeft.
//
// Every step writes the new layout before it removes from the legacy one, and never
// overwrites a newer state, so Migrate is safe to run while filters and sweepers of either
// layout run, and to run again: a crash between two steps leaves a URL dirty in both layouts
// (it is handed on twice), never in neither. It costs a SCAN of the legacy states and a few
// round trips per batch keys.
func (m *Map) Migrate(ctx context.Context, batch int) (MigrateReport, error) {
	if batch <= 0 {
		batch = 100
	}
	var rep MigrateReport
	old := LegacyKeys(m.ns)
	// Every legacy key is in the slot of {ns}: SCAN that slot's master.
	var node redis.UniversalClient = m.rdb
	if cc, ok := m.rdb.(*redis.ClusterClient); ok {
		master, err := cc.MasterForKey(ctx, old.Items)
		if err != nil {
			return rep, fmt.Errorf("dirty: migrate: %w", err)
		}
		node = master
	}
	if err := m.migrateStates(ctx, node, old, batch, &rep); err != nil {
		return rep, fmt.Errorf("dirty: migrate states: %w", err)
	}
	if err := m.migrateDirty(ctx, node, old, batch, &rep); err != nil {
		return rep, fmt.Errorf("dirty: migrate dirty set: %w", err)
	}
	if err := m.migrateLeases(ctx, node, old, batch, &rep); err != nil {
		return rep, fmt.Errorf("dirty: migrate leases: %w", err)
	}
	n, err := node.ZCard(ctx, old.Leases).Result()
	if err != nil {
		return rep, fmt.Errorf("dirty: migrate: %w", err)
	}
	rep.LeasedLeft = n
	return rep, nil
}

func (m *Map) migrateStates(ctx context.Context, node redis.UniversalClient, old Keys, batch int, rep *MigrateReport) error {
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, globEscape(old.State)+"*", int64(batch)).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := m.moveStates(ctx, node, old, keys, rep); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// moveStates moves the legacy states keys.
func (m *Map) moveStates(ctx context.Context, node redis.UniversalClient, old Keys, keys []string, rep *MigrateReport) error {
	vals := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			vals[i], ttls[i] = p.Get(ctx, k), p.PTTL(ctx, k)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	var moves, deletes []scriptpipe.Call
	for i, k := range keys {
		v, err := vals[i].Result()
		if errors.Is(err, redis.Nil) {
			continue // expired since the SCAN
		}
		if err != nil {
			return err
		}
		ttl := ttls[i].Val()
		if ttl == -2 { // gone between GET and PTTL
			continue
		}
		if ttl < 0 {
			ttl = 0 // no TTL
		}
		url := strings.TrimPrefix(k, old.State)
		moves = append(moves, scriptpipe.Call{Keys: []string{KeysOf(m.ns, url).State + url}, Args: []any{v, ttl.Milliseconds()}})
		deletes = append(deletes, scriptpipe.Call{Keys: []string{k}, Args: []any{v}})
	}
	if err := scriptpipe.Err(scriptpipe.Run(ctx, m.rdb, migrateStateScript, moves)); err != nil {
		return err
	}
	for _, r := range scriptpipe.Run(ctx, node, deleteIfScript, deletes) {
		n, err := r.Int()
		if err != nil {
			return err
		}
		if n == 1 {
			rep.States++
		} else {
			rep.StatesChanged++
		}
	}
	return nil
}

// migrateDirty moves the legacy dirty set's URLs, batch at a time, until it is empty.
func (m *Map) migrateDirty(ctx context.Context, node redis.UniversalClient, old Keys, batch int, rep *MigrateReport) error {
	for {
		urls, err := node.SRandMemberN(ctx, old.Items, int64(batch)).Result()
		if err != nil || len(urls) == 0 {
			return err
		}
		if err := m.markAll(ctx, urls); err != nil {
			return err
		}
		if err := node.SRem(ctx, old.Items, strs(urls)...).Err(); err != nil {
			return err
		}
		rep.Dirty += len(urls)
	}
}

// markAll adds urls to their buckets' dirty sets, one SADD per bucket, in one pipeline.
func (m *Map) markAll(ctx context.Context, urls []string) error {
	_, err := m.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for b, group := range byBucket(urls) {
			p.SAdd(ctx, m.keys(b).Items, strs(group)...)
		}
		return nil
	})
	return err
}

// migrateLeases moves the URLs of expired legacy leases, batch at a time, until none is left.
func (m *Map) migrateLeases(ctx context.Context, node redis.UniversalClient, old Keys, batch int, rep *MigrateReport) error {
	for {
		now, err := node.Time(ctx).Result()
		if err != nil {
			return err
		}
		urls, err := node.ZRangeByScore(ctx, old.Leases, &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(batch),
		}).Result()
		if err != nil || len(urls) == 0 {
			return err
		}
		owners, err := node.HMGet(ctx, old.Owners, urls...).Result()
		if err != nil {
			return err
		}
		if err := m.markAll(ctx, urls); err != nil {
			return err
		}
		args := make([]any, 0, 2*len(urls))
		records := map[string]bool{}
		for i, u := range urls {
			owner, _ := owners[i].(string)
			args = append(args, u, owner)
			if b := Token(owner).Batch(); owner != "" {
				records[old.Batch+b] = true
			}
		}
		dropped, err := dropExpiredScript.Run(ctx, node, []string{old.Leases, old.Owners}, args...).StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		// Those batches are no longer whole: their records only served to take them over.
		if len(records) > 0 {
			if err := node.Del(ctx, slices.Collect(maps.Keys(records))...).Err(); err != nil {
				return err
			}
		}
		rep.Leased += len(dropped)
		if len(dropped) == 0 {
			return nil // all taken over by a legacy sweeper meanwhile: they are no longer expired
		}
	}
}

// globEscape escapes the glob characters of SCAN MATCH in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
