package chaos

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Origin is the API the warmer fetches: for each URL it serves the newest version that has
// been published (404 after a delete, and for URLs never created).
type Origin struct {
	plan    *Plan
	latency time.Duration

	mu      sync.RWMutex
	applied int // changes [0, applied) are live
	current map[string]Change

	Requests atomic.Int64
	// FailEvery, when above 0, makes every FailEvery-th request answer 503: ordinary origin
	// failures, each spending one delivery of a warm request's budget.
	FailEvery int64
	Failed    atomic.Int64
}

// NewOrigin returns an origin for plan that answers after latency.
func NewOrigin(plan *Plan, latency time.Duration) *Origin {
	return &Origin{plan: plan, latency: latency, current: make(map[string]Change, len(plan.URLs))}
}

// Advance publishes every change up to and including gen. The bus calls it before it
// delivers a batch announcing gen: a resource changes before its event is sent.
func (o *Origin) Advance(gen int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for ; o.applied <= gen && o.applied < len(o.plan.Changes); o.applied++ {
		ch := o.plan.Changes[o.applied]
		if !ch.Noop {
			o.current[ch.URL] = ch
		}
	}
}

// Body is the representation the origin serves for url now, or nil when it answers 404.
func (o *Origin) Body(url string) []byte {
	o.mu.RLock()
	ch, ok := o.current[url]
	o.mu.RUnlock()
	if !ok || ch.Deleted {
		return nil
	}
	return Representation(url, ch.Version)
}

// Representation is the JSON body of version v of url.
func Representation(url string, v int) []byte {
	return fmt.Appendf(nil, `{"url":%q,"version":%d}`, url, v)
}

// ServeHTTP answers GET with the current representation.
func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := o.Requests.Add(1)
	if o.latency > 0 {
		time.Sleep(o.latency)
	}
	if o.FailEvery > 0 && n%o.FailEvery == 0 {
		o.Failed.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body := o.Body(o.plan.Base + r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	if body == nil {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not found"}`))
		return
	}
	_, _ = w.Write(body)
}
