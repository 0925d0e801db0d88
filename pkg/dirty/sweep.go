package dirty

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Sweep hands dirty URLs to fn, one at a time, in random order, until the map has no free
// dirty URL or limit URLs were handled (limit ≤ 0 means no limit, as in the gem). A URL leaves
// the map only when fn returns true and no error; a false result, an error or a panic puts it
// back, but only when the sweep ends, so no URL is handed to fn twice in one sweep. An error
// (or a panic, returned wrapping ErrPanicked) ends the sweep and is returned; ErrStop ends it
// without an error.
//
// Unlike the gem's SPOP, URLs are leased, not removed, while fn runs: if the process dies,
// they return to the map when the lease ends (Options.LeaseTTL), and a concurrent sweep
// elsewhere never gets a URL this one holds. The sweep renews every lease it holds (the URLs
// waiting for fn in the current chunk, and those it will put back) every third of the lease
// TTL, so a slow fn does not let them expire. Should a lease be lost anyway (the process or Redis stalled for
// longer than the TTL, and another sweeper took the URL), the URL is not handed to fn (or, when
// fn already ran, its result is not recorded), the sweep goes on, and the returned error wraps
// ErrLeaseLost with the count.
func (m *Map) Sweep(ctx context.Context, limit int, fn func(url string) (bool, error)) (err error) {
	h := &holding{m: m, urls: map[Token]map[string]bool{}}
	rctx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		h.renewEvery(rctx, max(m.ttl/3, time.Millisecond))
	}()
	defer func() {
		stopRenew()
		<-renewed
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rerr := h.releaseAll(bctx); rerr != nil && err == nil {
			err = rerr
		}
		if h.lost > 0 {
			err = errors.Join(err, fmt.Errorf("%w: %d URLs were taken by another sweeper while this sweep held them", ErrLeaseLost, h.lost))
		}
	}()
	seen := map[string]bool{}
	done := 0
	for limit <= 0 || done < limit {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := m.chunk
		if limit > 0 {
			n = min(n, limit-done)
		}
		urls, tok, err := m.Lease(ctx, n, m.ttl)
		if err != nil {
			return err
		}
		if len(urls) == 0 {
			return nil
		}
		h.add(tok, urls)
		for _, url := range urls {
			if seen[url] || (limit > 0 && done >= limit) {
				// A URL already handed to fn that was marked again and came back, or one beyond
				// the limit: it stays held and is given back when the sweep ends.
				continue
			}
			// Renewing the URL just before fn runs proves this sweep still holds it.
			if held, err := m.Renew(ctx, tok, m.ttl, url); err != nil {
				return err
			} else if len(held) == 0 {
				h.drop(tok, url, true)
				continue
			}
			seen[url] = true
			done++
			ok, ferr := call(fn, url)
			if ok && (ferr == nil || errors.Is(ferr, ErrStop)) {
				if err := h.complete(ctx, tok, url); err != nil {
					return err
				}
			}
			if ferr != nil {
				if errors.Is(ferr, ErrStop) {
					return nil
				}
				return ferr
			}
		}
	}
	return nil
}

// holding is what one Sweep holds leased: URLs waiting for fn and URLs to give back at the end.
type holding struct {
	m    *Map
	ops  sync.Mutex // a renewal round never sees a URL completed but not yet dropped
	mu   sync.Mutex
	urls map[Token]map[string]bool
	lost int // URLs whose lease another holder took while this sweep held it
}

func (h *holding) add(tok Token, urls []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.urls[tok] == nil {
		h.urls[tok] = map[string]bool{}
	}
	for _, u := range urls {
		h.urls[tok][u] = true
	}
}

// complete ends the lease of url after fn succeeded and forgets it.
func (h *holding) complete(ctx context.Context, tok Token, url string) error {
	h.ops.Lock()
	defer h.ops.Unlock()
	done, err := h.m.Complete(ctx, tok, url)
	if err != nil {
		return err
	}
	h.drop(tok, url, len(done) == 0)
	return nil
}

// drop forgets url (completed, or lost when lost is true).
func (h *holding) drop(tok Token, url string, lost bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.urls[tok][url] && lost {
		h.lost++
	}
	delete(h.urls[tok], url)
}

func (h *holding) snapshot() map[Token][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[Token][]string{}
	for tok, set := range h.urls {
		for u := range set {
			out[tok] = append(out[tok], u)
		}
	}
	return out
}

// forget drops the URLs of tok that are not in kept and counts them as lost.
func (h *holding) forget(tok Token, asked, kept []string) {
	if len(kept) == len(asked) {
		return
	}
	keep := map[string]bool{}
	for _, u := range kept {
		keep[u] = true
	}
	for _, u := range asked {
		if !keep[u] {
			h.drop(tok, u, true)
		}
	}
}

// renewEvery renews every held lease each period until ctx ends. A failed renewal (Redis
// unreachable) is tried again at the next tick.
func (h *holding) renewEvery(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.ops.Lock()
		for tok, urls := range h.snapshot() {
			if held, err := h.m.Renew(ctx, tok, h.m.ttl, urls...); err == nil {
				h.forget(tok, urls, held)
			}
		}
		h.ops.Unlock()
	}
}

// releaseAll gives back every URL still held.
func (h *holding) releaseAll(ctx context.Context) error {
	var err error
	for tok, urls := range h.snapshot() {
		back, rerr := h.m.Release(ctx, tok, urls...)
		if rerr != nil {
			err = errors.Join(err, rerr)
			continue
		}
		h.forget(tok, urls, back)
	}
	return err
}

// SweepOne hands url to fn and removes it from the map when fn returns true and no error. As
// in the gem, fn runs even when url is not dirty (then nothing is removed and SweepOne reports
// false). While fn runs the URL is leased, so no sweep hands it on at the same time; when
// another holder's lease on it is running, fn is not called and the error is ErrLeased. It
// reports whether the URL left the map.
func (m *Map) SweepOne(ctx context.Context, url string, fn func(url string) (bool, error)) (bool, error) {
	tok := Token(newBatchID() + ".0")
	k := KeysOf(m.ns, url)
	r, err := leaseURLScript.Run(ctx, m.rdb, []string{k.Items, k.Leases, k.Owners},
		url, string(tok), m.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("dirty: sweep one: %w", err)
	}
	if r < 0 {
		return false, ErrLeased
	}
	ok, ferr := call(fn, url)
	if r == 0 {
		return false, ferr
	}
	// The outcome must be recorded even when ctx ended while fn ran.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ok && (ferr == nil || errors.Is(ferr, ErrStop)) {
		done, err := m.Complete(bctx, tok, url)
		if err != nil {
			return false, err
		}
		return len(done) == 1, ferr
	}
	if _, err := m.Release(bctx, tok, url); err != nil {
		return false, errors.Join(ferr, err)
	}
	return false, ferr
}

func call(fn func(string) (bool, error), url string) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("%w on %s: %v", ErrPanicked, url, r)
		}
	}()
	return fn(url)
}
