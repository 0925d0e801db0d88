package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

// hostValues returns, per metric family, the distinct values of its host label.
func hostValues(t *testing.T, reg *prometheus.Registry) map[string]map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "host" {
					if out[mf.GetName()] == nil {
						out[mf.GetName()] = map[string]bool{}
					}
					out[mf.GetName()][l.GetValue()] = true
				}
			}
		}
	}
	return out
}

func breakersHeld(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	v, _ := gauge(t, reg, "drain_apiclient_breakers", nil)
	return v
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Whoever holds a bus token names hosts: 3,000 distinct ones give at most
// DRAIN_METRICS_MAX_HOSTS + 1 host label values per metric, and at most
// DRAIN_BREAKER_MAX_HOSTS + 1 circuit breakers.
func TestThousandsOfHostsStayBounded(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close") // keep no idle connection per host: measure the client alone
	})
	reg := prometheus.NewRegistry()
	c := newClient(t, apiclient.Options{
		Breaker:    apiclient.BreakerOptions{Enabled: true, MaxHosts: 500},
		Registerer: reg,
		Transport:  routeAllTo(o.Listener.Addr().String()),
	})
	before := heapInUse()
	const hosts = 3000
	for i := range hosts {
		if _, err := c.Get(context.Background(), fmt.Sprintf("http://h%d.example.test/r", i)); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			if n := breakersHeld(t, reg); n > 501 {
				t.Fatalf("%d breakers held after %d hosts", int(n), i+1)
			}
		}
	}
	grown := int64(heapInUse()) - int64(before)
	values := hostValues(t, reg)
	for _, name := range []string{"drain_apiclient_requests_total", "drain_apiclient_request_duration_seconds", "drain_apiclient_breaker_state"} {
		if n := len(values[name]); n == 0 || n > apiclient.DefaultMetricsMaxHosts+1 {
			t.Errorf("%s has %d host values for %d hosts, want 1 to %d", name, n, hosts, apiclient.DefaultMetricsMaxHosts+1)
		}
	}
	for _, name := range []string{"drain_apiclient_requests_total", "drain_apiclient_request_duration_seconds"} {
		v := values[name]
		if !v[apiclient.OtherHost] || !v["h0.example.test"] || v[fmt.Sprintf("h%d.example.test", hosts-1)] {
			t.Errorf("%s: the first hosts should have their own label and the rest share %q", name, apiclient.OtherHost)
		}
	}
	if got, ok := draintest.Metric(t, reg, "drain_apiclient_requests_total", "host", apiclient.OtherHost, "method", "GET", "class", "2xx"); !ok || got != hosts-apiclient.DefaultMetricsMaxHosts {
		t.Errorf("requests under %q = %v, want %d", apiclient.OtherHost, got, hosts-apiclient.DefaultMetricsMaxHosts)
	}
	if n := breakersHeld(t, reg); n != 501 {
		t.Errorf("%v breakers held, want 500 of their own and the shared one", n)
	}
	t.Logf("%d hosts: heap grew by %.2f MiB", hosts, float64(grown)/(1<<20))
}

// A host the allowlist refuses never gets a series of its own; an exact allowlist entry
// always does, however many hosts a wildcard let in before it.
func TestRefusedHostsHaveNoSeries(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {})
	reg := prometheus.NewRegistry()
	c := newClient(t, apiclient.Options{
		AllowHosts:      []string{"*.wild.test", "api.exact.test"},
		MetricsMaxHosts: 10,
		Registerer:      reg,
		Transport:       routeAllTo(o.Listener.Addr().String()),
	})
	ctx := context.Background()
	for i := range 1000 {
		if _, err := c.Get(ctx, fmt.Sprintf("http://refused%d.test/", i)); !errors.Is(err, apiclient.ErrHostNotAllowed) {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		if _, err := c.Get(ctx, fmt.Sprintf("http://w%d.wild.test/", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Get(ctx, "http://api.exact.test/"); err != nil {
		t.Fatal(err)
	}
	values := hostValues(t, reg)
	if got := values["drain_apiclient_rejected_total"]; len(got) != 1 || !got[apiclient.OtherHost] {
		t.Errorf("rejected_total host values %v, want only %q", got, apiclient.OtherHost)
	}
	if v, _ := draintest.Metric(t, reg, "drain_apiclient_rejected_total", "host", apiclient.OtherHost, "reason", "host_not_allowed"); v != 1000 {
		t.Errorf("%v refusals counted, want 1000", v)
	}
	req := values["drain_apiclient_requests_total"]
	if len(req) != 12 || !req["api.exact.test"] || !req[apiclient.OtherHost] {
		t.Errorf("requests_total host values %v, want the exact host, 10 wildcard ones and %q", req, apiclient.OtherHost)
	}
	for h := range req {
		if strings.HasPrefix(h, "refused") {
			t.Errorf("refused host %s has a series", h)
		}
	}
}

// Idle closed breakers make room for new hosts; an open one is kept (dropping it would let a
// failing host's traffic through), and while every slot is busy a new host shares the other
// breaker.
func TestIdleBreakersEvicted(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "bad.") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	reg := prometheus.NewRegistry()
	const window = 300 * time.Millisecond
	c := newClient(t, apiclient.Options{
		Breaker: apiclient.BreakerOptions{Enabled: true, MaxHosts: 50, TimeWindow: window, SleepWindow: time.Minute,
			VolumeThreshold: 2, ErrorThreshold: 50},
		MetricsMaxHosts: 10000, // every host has a label: breakers are seen per host
		Registerer:      reg,
		Transport:       routeAllTo(o.Listener.Addr().String()),
	})
	ctx := context.Background()
	get := func(host string) error {
		_, err := c.Get(ctx, "http://"+host+"/r")
		return err
	}
	for range 2 {
		if err := get("bad.test"); !errors.Is(err, apiclient.ErrServerError) {
			t.Fatal(err)
		}
	}
	if err := get("bad.test"); !errors.Is(err, apiclient.ErrCircuitOpen) {
		t.Fatalf("bad.test circuit not open: %v", err)
	}
	for i := range 49 {
		if err := get(fmt.Sprintf("a%d.test", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := get("late.test"); err != nil { // all 50 slots busy: the shared breaker
		t.Fatal(err)
	}
	if n := breakersHeld(t, reg); n != 51 {
		t.Fatalf("%v breakers, want 50 and the shared one", n)
	}
	time.Sleep(window + 100*time.Millisecond)
	// Thousands more hosts, arriving after the first ones went idle: the map never grows past
	// its bound, and the open circuit survives every sweep.
	for i := range 2000 {
		if err := get(fmt.Sprintf("b%d.test", i)); err != nil {
			t.Fatal(err)
		}
		if i%250 == 0 {
			if n := breakersHeld(t, reg); n > 51 {
				t.Fatalf("%v breakers after %d more hosts", n, i)
			}
		}
	}
	// Once they are idle too, a new host finds room at once, and only the open breaker and
	// the shared one are left besides its own.
	time.Sleep(window + 100*time.Millisecond)
	for range 2 { // the second request shows its breaker under its own label
		if err := get("fresh.test"); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok := gauge(t, reg, "drain_apiclient_breaker_state", map[string]string{"host": "fresh.test"}); !ok || v != apiclient.StateClosed {
		t.Errorf("fresh.test has no breaker of its own after the idle ones were dropped (%v %v)", v, ok)
	}
	if n := breakersHeld(t, reg); n != 3 {
		t.Errorf("%v breakers held, want 3 (bad.test, fresh.test and the shared one)", n)
	}
	sent := o.count()
	if err := get("bad.test"); !errors.Is(err, apiclient.ErrCircuitOpen) || o.count() != sent {
		t.Errorf("bad.test's open circuit was dropped: %v", err)
	}
	if v, _ := gauge(t, reg, "drain_apiclient_breaker_state", map[string]string{"host": "bad.test"}); v != apiclient.StateOpen {
		t.Errorf("bad.test gauge %v, want open", v)
	}
}
