package apiclient_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

// gauge reads the series of a gathered metric with the given labels; ok is false when none.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	pairs := make([]string, 0, 2*len(labels))
	for k, v := range labels {
		pairs = append(pairs, k, v)
	}
	return draintest.Metric(t, reg, name, pairs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// breakerConfig returns the options of a client whose circuits are on with b.
func breakerConfig(b apiclient.BreakerOptions) apiclient.Options {
	b.Enabled = true
	return apiclient.Options{Breaker: b}
}

func TestBreakerOpensHalfOpensCloses(t *testing.T) {
	var status atomic.Int32
	status.Store(500)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) })
	reg := prometheus.NewRegistry()
	opts := breakerConfig(apiclient.BreakerOptions{SleepWindow: 300 * time.Millisecond, TimeWindow: 10 * time.Second, VolumeThreshold: 4, ErrorThreshold: 50})
	opts.Registerer = reg
	c := newClient(t, opts)
	ctx := context.Background()
	state := func() float64 {
		v, _ := gauge(t, reg, "drain_apiclient_breaker_state", map[string]string{"host": "127.0.0.1"})
		return v
	}

	// One success and two failures: 3 outcomes, below the volume threshold of 4.
	status.Store(200)
	if _, err := c.Get(ctx, o.URL); err != nil {
		t.Fatal(err)
	}
	status.Store(500)
	for range 2 {
		if _, err := c.Get(ctx, o.URL); !errors.Is(err, apiclient.ErrServerError) {
			t.Fatal(err)
		}
	}
	if state() != apiclient.StateClosed {
		t.Fatal("circuit opened below the volume threshold")
	}
	// The 4th outcome reaches the volume with 3/4 = 75% errors ≥ 50%: the circuit opens.
	if _, err := c.Get(ctx, o.URL); !errors.Is(err, apiclient.ErrServerError) {
		t.Fatal(err)
	}
	if state() != apiclient.StateOpen {
		t.Fatalf("state %v after 3 failures in 4, want open", state())
	}
	sent := o.count()
	_, err := c.Get(ctx, o.URL)
	if !errors.Is(err, apiclient.ErrCircuitOpen) || !apiclient.Retryable(err) {
		t.Fatalf("open circuit: %v", err)
	}
	if o.count() != sent {
		t.Error("a request reached the origin through an open circuit")
	}
	if n, _ := gauge(t, reg, "drain_apiclient_rejected_total", map[string]string{"reason": "circuit_open"}); n != 1 {
		t.Errorf("rejected_total = %v", n)
	}

	// After the sleep window the circuit half-opens by itself (the gauge shows it with no traffic);
	// a failing probe opens it again.
	waitFor(t, "half-open", func() bool { return state() == apiclient.StateHalfOpen })
	if _, err := c.Get(ctx, o.URL); !errors.Is(err, apiclient.ErrServerError) {
		t.Fatalf("probe: %v", err)
	}
	if state() != apiclient.StateOpen || o.count() != sent+1 {
		t.Fatalf("after a failed probe: state %v, %d requests", state(), o.count()-sent)
	}
	// The next probe succeeds and closes it.
	status.Store(200)
	waitFor(t, "half-open again", func() bool { return state() == apiclient.StateHalfOpen })
	if _, err := c.Get(ctx, o.URL); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if state() != apiclient.StateClosed {
		t.Fatalf("state %v after a good probe, want closed", state())
	}
	if _, err := c.Get(ctx, o.URL); err != nil {
		t.Fatal(err)
	}
	if n, _ := gauge(t, reg, "drain_apiclient_requests_total", map[string]string{"host": "127.0.0.1", "class": "5xx"}); n != 4 {
		t.Errorf("requests_total{class=5xx} = %v, want 4", n)
	}
	if n, _ := gauge(t, reg, "drain_apiclient_request_duration_seconds", map[string]string{"host": "127.0.0.1", "class": "2xx"}); n != 3 {
		t.Errorf("duration samples {class=2xx} = %v, want 3", n)
	}
}

func TestBreakerIgnoresClientErrors(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) })
	c := newClient(t, breakerConfig(apiclient.BreakerOptions{SleepWindow: time.Minute, TimeWindow: time.Minute, VolumeThreshold: 1, ErrorThreshold: 1}))
	for range 10 {
		if _, err := c.Get(context.Background(), o.URL); !errors.Is(err, apiclient.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if o.count() != 10 {
		t.Errorf("%d of 10 requests sent", o.count())
	}
}

func TestBreakerCountsTimeouts(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	cfg := breakerConfig(apiclient.BreakerOptions{SleepWindow: time.Minute, TimeWindow: time.Minute, VolumeThreshold: 1, ErrorThreshold: 1})
	cfg.Timeout = 50 * time.Millisecond
	c := newClient(t, cfg)
	// The spec's case: thresholds at 1, five timed-out calls. The first attempt opens the
	// circuit and its retries stop at once, so the origin sees one request.
	for i := range 5 {
		_, err := c.Get(context.Background(), o.URL)
		if want := apiclient.ErrCircuitOpen; i == 0 && !errors.Is(err, want) || i > 0 && !errors.Is(err, want) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := o.count(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}

func TestBreakerPerHostOverride(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	cfg := breakerConfig(apiclient.BreakerOptions{SleepWindow: time.Minute, TimeWindow: time.Minute, VolumeThreshold: 100, ErrorThreshold: 50})
	cfg.Breaker.Hosts = map[string]apiclient.BreakerSettings{
		"fragile.example.com": {SleepWindow: time.Minute, TimeWindow: time.Minute, VolumeThreshold: 2, ErrorThreshold: 100},
	}
	cfg.Transport = routeAllTo(o.Listener.Addr().String())
	c := newClient(t, cfg)
	ctx := context.Background()
	for range 5 {
		if _, err := c.Get(ctx, "http://sturdy.example.com/x"); !errors.Is(err, apiclient.ErrUnavailable) {
			t.Fatalf("sturdy host: %v", err)
		}
	}
	var errs []error
	for range 5 {
		_, err := c.Get(ctx, "http://FRAGILE.example.com/x")
		errs = append(errs, err)
	}
	if !errors.Is(errs[1], apiclient.ErrUnavailable) || !errors.Is(errs[2], apiclient.ErrCircuitOpen) || !errors.Is(errs[4], apiclient.ErrCircuitOpen) {
		t.Errorf("fragile host errors: %v", errs)
	}
	// Only the fragile host's circuit is open.
	if _, err := c.Get(ctx, "http://sturdy.example.com/x"); !errors.Is(err, apiclient.ErrUnavailable) {
		t.Errorf("sturdy host after the fragile one opened: %v", err)
	}
	if n := o.count(); n != 5+2+1 {
		t.Errorf("origin saw %d requests, want 8", n)
	}
}

func TestBreakerDisabled(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	cfg := apiclient.Options{Breaker: apiclient.BreakerOptions{SleepWindow: time.Minute, TimeWindow: time.Minute, VolumeThreshold: 1, ErrorThreshold: 1}}
	c := newClient(t, cfg)
	for range 5 {
		c.Get(context.Background(), o.URL)
	}
	if o.count() != 5 {
		t.Errorf("with ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT=NO, %d of 5 requests sent", o.count())
	}
}
