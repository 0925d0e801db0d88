package apiclient

import (
	"context"
	"fmt"
)

// Future is the pending result of GetAsync (the gem's fget). It is safe to Wait from several
// goroutines.
type Future struct {
	done chan struct{}
	resp *Response
	err  error
}

// GetAsync starts a GET of url and returns at once. At most Options.Concurrency futures of
// this Client run at a time; the others wait for a slot (or for ctx to end).
func (c *Client) GetAsync(ctx context.Context, url string, ro ...RequestOptions) *Future {
	f := &Future{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			f.err = fmt.Errorf("apiclient: GET %s: waiting for a slot: %w", url, ctx.Err())
			return
		}
		defer func() { <-c.sem }()
		f.resp, f.err = c.Get(ctx, url, ro...)
	}()
	return f
}

// Wait blocks until the request ends and returns what Get would have returned.
func (f *Future) Wait() (*Response, error) {
	<-f.done
	return f.resp, f.err
}

// Done is closed when the result is ready.
func (f *Future) Done() <-chan struct{} { return f.done }
