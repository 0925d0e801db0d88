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

// Go starts Get(ctx, url, v) on its own goroutine and returns its Future.
func (c *Cache) Go(ctx context.Context, url string, v Variant) *Future {
	f := &Future{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.resp, f.err = c.Get(ctx, url, v)
	}()
	return f
}

// Result is one answer of GetMany.
type Result struct {
	Response *Response
	Err      error
}

// GetMany gets the variant of every URL with at most Config.Parallel fetches at once, and
// returns the results in the order of urls.
func (c *Cache) GetMany(ctx context.Context, urls []string, v Variant) []Result {
	out := make([]Result, len(urls))
	sem := make(chan struct{}, c.cfg.Parallel)
	var wg sync.WaitGroup
	for i, u := range urls {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := c.Get(ctx, u, v)
			out[i] = Result{Response: r, Err: err}
		}()
	}
	wg.Wait()
	return out
}
