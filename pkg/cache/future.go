package cache

import (
	"context"
	"sync"
)

// Future is a Get running in the background (the gem's fget).
type Future struct {
	done chan struct{}
	resp *Response
	err  error
}

// Wait blocks until the Get finished and returns its result.
func (f *Future) Wait() (*Response, error) {
	<-f.done
	return f.resp, f.err
}

// Done is closed when the result is ready.
func (f *Future) Done() <-chan struct{} { return f.done }

// Go starts Get(ctx, url, v) in the background and returns its Future at once. The Get
// waits for one of the Cache's Options.Parallel slots, shared with GetMany, so however many
// futures are started, at most Parallel of their Gets (and so of their origin fetches) run at
// once; each waiting future costs one parked goroutine. If ctx ends while it waits, the
// Future's error is ctx.Err() and nothing is fetched.
func (c *Cache) Go(ctx context.Context, url string, v Variant) *Future {
	f := &Future{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		if err := c.acquire(ctx); err != nil {
			f.err = err
			return
		}
		defer c.release()
		f.resp, f.err = c.Get(ctx, url, v)
	}()
	return f
}

// acquire takes one of the Parallel slots, or returns ctx.Err() if ctx ends first.
func (c *Cache) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Cache) release() { <-c.slots }

// Result is one answer of GetMany.
type Result struct {
	Response *Response
	Err      error
}

// GetMany gets the variant of every URL and returns the results in the order of urls. Its
// Gets take the Cache's Options.Parallel slots, shared with Go, so at most Parallel run at
// once across all callers; it starts a goroutine only when a slot is free. If ctx ends, the
// URLs not started yet get ctx.Err().
func (c *Cache) GetMany(ctx context.Context, urls []string, v Variant) []Result {
	out := make([]Result, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		if err := c.acquire(ctx); err != nil {
			for j := i; j < len(urls); j++ {
				out[j] = Result{Err: err}
			}
			break
		}
		wg.Add(1)
		go func() {
			defer func() { c.release(); wg.Done() }()
			r, err := c.Get(ctx, u, v)
			out[i] = Result{Response: r, Err: err}
		}()
	}
	wg.Wait()
	return out
}
