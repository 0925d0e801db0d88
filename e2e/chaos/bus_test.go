package chaos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flakyIngest accepts a batch only on its third attempt, answering 503 or dropping the
// connection before that, and records what it saw.
type flakyIngest struct {
	mu       sync.Mutex
	attempts map[[32]byte]int
	accepted map[[32]byte]int
	inFlight atomic.Int32
	maxIn    atomic.Int32
	badAuth  atomic.Int32
}

func (f *flakyIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxIn.Load()
		if n <= m || f.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(5 * time.Millisecond)
	if u, p, ok := r.BasicAuth(); !ok || u != "tok" || p != "x" || r.Header.Get("Content-Type") != "application/json" {
		f.badAuth.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256(body)
	f.mu.Lock()
	f.attempts[sum]++
	a := f.attempts[sum]
	f.mu.Unlock()
	switch a {
	case 1:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	case 2:
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
	default:
		f.mu.Lock()
		f.accepted[sum]++
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

func TestBusResendsSameBytesUntilAcknowledged(t *testing.T) {
	f := &flakyIngest{attempts: map[[32]byte]int{}, accepted: map[[32]byte]int{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	p := NewPlan(3, 2000, 100, "http://origin.test")
	o := NewOrigin(p, 0)
	bus := &Bus{Targets: []string{srv.URL + "/events"}, Token: "tok", InFlight: 6, Backoff: time.Millisecond, BackoffMax: 10 * time.Millisecond, Origin: o}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := bus.Deliver(ctx, p.Batches)

	if st.Acked != len(p.Batches) {
		t.Fatalf("acked %d of %d batches: %s", st.Acked, len(p.Batches), st)
	}
	if f.badAuth.Load() != 0 {
		t.Fatalf("%d requests without Basic token:x and application/json", f.badAuth.Load())
	}
	distinct := map[[32]byte]bool{}
	for _, b := range p.Batches {
		distinct[sha256.Sum256(b.Body)] = true
	}
	for sum := range distinct {
		if f.accepted[sum] == 0 || f.attempts[sum] < 3 {
			t.Fatalf("a batch was accepted %d times after %d attempts; want resends of identical bytes until accepted", f.accepted[sum], f.attempts[sum])
		}
	}
	if st.Failures["HTTP 503"] == 0 || st.Attempts < 3*len(p.Batches) {
		t.Fatalf("failures not recorded: %s", st)
	}
	if f.maxIn.Load() < 2 {
		t.Fatalf("at most %d POST in flight, want several", f.maxIn.Load())
	}
	// The origin was advanced to every change the batches announce.
	last := p.Changes[len(p.Changes)-1]
	if !last.Noop && !last.Deleted && !bytes.Equal(o.Body(last.URL), Representation(last.URL, last.Version)) {
		t.Fatalf("origin not advanced to the last change")
	}
}

func TestBusRateLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	p := NewPlan(5, 1000, 50, "http://o")
	bus := &Bus{Targets: []string{srv.URL}, Token: "t", Rate: 4000}
	start := time.Now()
	st := bus.Deliver(context.Background(), p.Batches)
	if st.Acked != len(p.Batches) {
		t.Fatalf("acked %d/%d", st.Acked, len(p.Batches))
	}
	// 1000 events at 4000/s cannot take much less than a quarter second.
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Fatalf("1000 events at 4000/s took %s", took)
	}
}
