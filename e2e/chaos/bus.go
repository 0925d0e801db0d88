package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bus delivers a plan's batches the way Routemaster does: POST with Basic auth (token as the
// username, password "x"), several batches in flight, and any non-2xx answer or transport
// error resends the same bytes later, with backoff, without limit until ctx ends.
type Bus struct {
	Targets  []string // ingest URLs; each retry moves on to the next
	Token    string
	InFlight int           // POSTs at once (default 8)
	Rate     int           // events per second offered at most (0: as fast as acknowledged)
	Backoff  time.Duration // first retry delay (default 50ms), doubled up to BackoffMax
	// BackoffMax is the longest delay between two attempts of one batch (default 2s).
	BackoffMax time.Duration
	Origin     *Origin // advanced before each batch is first sent
	Client     *http.Client

	acked    atomic.Int64
	attempts atomic.Int64
	mu       sync.Mutex
	failures map[string]int
}

// BusStats summarises a delivery run.
type BusStats struct {
	Batches  int
	Acked    int
	Attempts int
	Failures map[string]int // reason → count ("503", "connection refused", …)
	Took     time.Duration
}

// Acked is how many batches have been acknowledged so far.
func (b *Bus) Acked() int { return int(b.acked.Load()) }

// Deliver sends every batch until each is acknowledged or ctx ends.
func (b *Bus) Deliver(ctx context.Context, batches []Batch) BusStats {
	if b.InFlight <= 0 {
		b.InFlight = 8
	}
	if b.Backoff <= 0 {
		b.Backoff = 50 * time.Millisecond
	}
	if b.BackoffMax < b.Backoff {
		b.BackoffMax = 2 * time.Second
	}
	if b.Client == nil {
		b.Client = &http.Client{Timeout: 10 * time.Second}
	}
	b.failures = map[string]int{}
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for w := range b.InFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				b.deliver(ctx, w+i, batches[i])
			}
		}()
	}
	var sent int
	for i, batch := range batches {
		if b.Rate > 0 {
			due := start.Add(time.Duration(float64(sent) / float64(b.Rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}
		select {
		case work <- i:
			sent += batch.Events
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	st := BusStats{Batches: len(batches), Acked: b.Acked(), Attempts: int(b.attempts.Load()), Failures: map[string]int{}, Took: time.Since(start)}
	b.mu.Lock()
	for k, v := range b.failures {
		st.Failures[k] = v
	}
	b.mu.Unlock()
	return st
}

func (b *Bus) deliver(ctx context.Context, slot int, batch Batch) {
	if b.Origin != nil {
		b.Origin.Advance(batch.MaxGen)
	}
	delay := b.Backoff
	for attempt := 0; ; attempt++ {
		target := b.Targets[(slot+attempt)%len(b.Targets)]
		b.attempts.Add(1)
		reason := b.post(ctx, target, batch.Body)
		if reason == "" {
			b.acked.Add(1)
			return
		}
		b.mu.Lock()
		b.failures[reason]++
		b.mu.Unlock()
		jitter := time.Duration(rand.Int64N(int64(delay)/2 + 1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay + jitter):
		}
		delay = min(2*delay, b.BackoffMax)
	}
}

// post sends body once and returns "" on 2xx, else the reason of the failure.
func (b *Bus) post(ctx context.Context, target string, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return "bad request: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "routemaster-faraday-0.11.0 (chaos)")
	req.SetBasicAuth(b.Token, "x")
	resp, err := b.Client.Do(req)
	if err != nil {
		return errorReason(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return ""
	}
	return fmt.Sprintf("HTTP %d", resp.StatusCode)
}

func errorReason(err error) string {
	s := err.Error()
	for _, known := range []string{"connection refused", "connection reset", "EOF", "timeout", "deadline exceeded", "broken pipe"} {
		if strings.Contains(s, known) {
			return known
		}
	}
	return "error"
}

// String formats the stats on one line.
func (s BusStats) String() string {
	keys := make([]string, 0, len(s.Failures))
	for k := range s.Failures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, s.Failures[k]))
	}
	f := "none"
	if len(parts) > 0 {
		f = strings.Join(parts, ", ")
	}
	return fmt.Sprintf("%d/%d batches acknowledged in %s, %d POSTs, failed attempts (resent): %s",
		s.Acked, s.Batches, s.Took.Round(time.Millisecond), s.Attempts, f)
}
