package dirty

import (
	"context"
	"errors"
	"fmt"
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
// they return to the map when the lease ends (WithLeaseTTL), and a concurrent sweep elsewhere
// never gets a URL this one holds.
func (m *Map) Sweep(ctx context.Context, limit int, fn func(url string) (bool, error)) (err error) {
	seen := map[string]bool{}
	held := map[Token][]string{} // leased by this sweep, to give back when it ends
	defer func() {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for tok, urls := range held {
			if _, rerr := m.Release(bctx, tok, urls...); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()
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
		for i, url := range urls {
			if seen[url] || (limit > 0 && done >= limit) {
				// A URL already handed to fn whose lease expired during this sweep and came
				// back, or one beyond the limit: give it back when the sweep ends.
				held[tok] = append(held[tok], url)
				continue
			}
			seen[url] = true
			done++
			ok, ferr := call(fn, url)
			if ok && (ferr == nil || errors.Is(ferr, ErrStop)) {
				if _, err := m.Complete(ctx, tok, url); err != nil {
					held[tok] = append(held[tok], urls[i+1:]...)
					return err
				}
			} else {
				held[tok] = append(held[tok], url)
			}
			if ferr != nil {
				held[tok] = append(held[tok], urls[i+1:]...)
				if errors.Is(ferr, ErrStop) {
					return nil
				}
				return ferr
			}
		}
	}
	return nil
}

// SweepOne hands url to fn and removes it from the map when fn returns true and no error. As
// in the gem, fn runs even when url is not dirty (then nothing is removed and SweepOne reports
// false). While fn runs the URL is leased, so no sweep hands it on at the same time; when
// another holder's lease on it is running, fn is not called and the error is ErrLeased. It
// reports whether the URL left the map.
func (m *Map) SweepOne(ctx context.Context, url string, fn func(url string) (bool, error)) (bool, error) {
	tok := Token(newBatchID() + ".0")
	r, err := leaseURLScript.Run(ctx, m.rdb, []string{m.keys.Items, m.keys.Leases, m.keys.Owners},
		url, string(tok), m.ttl.Milliseconds(), m.keys.Batch).Int()
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
