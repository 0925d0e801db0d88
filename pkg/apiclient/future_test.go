package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

func TestFuturesAreParallelAndBounded(t *testing.T) {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	inflight, maxInflight, arrivals := 0, 0, 0
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inflight++
		arrivals++
		maxInflight = max(maxInflight, inflight)
		cond.Broadcast()
		// Wait until a second request is in flight with this one (or 2 s pass): proves two
		// run at once, and with a bound of 2 a third can never join them.
		timer := time.AfterFunc(2*time.Second, cond.Broadcast)
		for deadline := time.Now().Add(2 * time.Second); arrivals < 2 && time.Now().Before(deadline); {
			cond.Wait()
		}
		timer.Stop()
		inflight--
		mu.Unlock()
		fmt.Fprint(w, r.URL.Path)
	})
	c := newClient(t, apiclient.Options{Concurrency: 2})
	var futures []*apiclient.Future
	for i := range 6 {
		futures = append(futures, c.GetAsync(context.Background(), fmt.Sprintf("%s/%d", o.URL, i)))
	}
	for i, f := range futures {
		resp, err := f.Wait()
		if err != nil || string(resp.Body) != fmt.Sprintf("/%d", i) {
			t.Errorf("future %d: %v", i, err)
		}
	}
	if maxInflight != 2 {
		t.Errorf("at most %d requests in flight, want 2", maxInflight)
	}
}

func TestFutureWaitingForASlotHonoursContext(t *testing.T) {
	release := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	c := newClient(t, apiclient.Options{Timeout: 10 * time.Second, Concurrency: 1})
	busy := c.GetAsync(context.Background(), o.URL)
	waitFor(t, "the first request to hold the only slot", func() bool { return o.count() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	waiting := c.GetAsync(ctx, o.URL)
	cancel()
	if _, err := waiting.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled future: %v", err)
	}
	close(release)
	if _, err := busy.Wait(); err != nil {
		t.Error(err)
	}
	if o.count() != 1 {
		t.Errorf("%d requests sent, want 1", o.count())
	}
}
