package config

import (
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// TestLibraryDefaults: with every variable at its default, the options config builds are the
// libraries' own defaults, so a service and an app that uses a library's zero Options behave
// alike, and -h and the README show what the libraries do.
func TestLibraryDefaults(t *testing.T) {
	for _, svc := range []Service{Filter, Warmer, Sweeper, Drainctl} {
		c := Default(svc)
		wantStreams := stream.StreamOptions{Prefix: stream.DefaultPrefix, Replicas: stream.DefaultReplicas, MaxAge: stream.DefaultMaxAge,
			DuplicateWindow: stream.DefaultDuplicateWindow, DLQMaxBytes: stream.DefaultDLQMaxBytes, Manage: stream.ManageCreate}
		if c.Streams != wantStreams {
			t.Errorf("%s: Streams = %+v, want the stream package's defaults %+v", svc, c.Streams, wantStreams)
		}
		if c.NATS != (stream.ConnectOptions{URL: stream.DefaultURL}) {
			t.Errorf("%s: NATS = %+v", svc, c.NATS)
		}
		cons := c.Consumer
		if cons.MaxAckPending != stream.DefaultMaxAckPending || cons.MaxDeliver != stream.DefaultMaxDeliver || cons.AckWait != stream.DefaultAckWait ||
			cons.RetryBackoff != stream.DefaultBackoff || cons.RetryBackoffMax != stream.DefaultBackoffMax {
			t.Errorf("%s: Consumer = %+v, want the stream package's consumer defaults", svc, cons)
		}
		if got, want := c.CacheOptions(), (cache.Options{Namespace: cache.DefaultNamespace, Expiry: cache.DefaultExpiry, MaxBody: cache.DefaultMaxBody}); got.Namespace != want.Namespace || got.Expiry != want.Expiry || got.MaxBody != want.MaxBody {
			t.Errorf("%s: CacheOptions = %+v, want %+v", svc, got, want)
		}
		if got := c.ReorderOptions(); got != (reorder.Options{Namespace: reorder.DefaultNamespace, TTL: reorder.DefaultTTL}) {
			t.Errorf("%s: ReorderOptions = %+v", svc, got)
		}
		if got := c.DirtyOptions(); got.Namespace != dirty.DefaultNamespace || got.LeaseTTL != dirty.DefaultLeaseTTL {
			t.Errorf("%s: DirtyOptions = %+v", svc, got)
		}
		f := c.Fetch
		if f.Timeout != apiclient.DefaultTimeout || f.UserAgent != apiclient.DefaultUserAgent || f.MaxBody != apiclient.DefaultMaxBody ||
			f.VerifyTLS || f.Breaker.Enabled || len(f.Auth) != 0 || len(f.AllowHosts) != 0 || len(f.Breaker.Hosts) != 0 ||
			f.AuthOverHTTP || f.MetricsMaxHosts != apiclient.DefaultMetricsMaxHosts || f.Breaker.MaxHosts != apiclient.DefaultBreakerMaxHosts {
			t.Errorf("%s: Fetch = %+v, want the apiclient defaults", svc, f)
		}
		if got, want := f.Breaker.For("any.test"), (apiclient.BreakerOptions{}).For("any.test"); got != want {
			t.Errorf("%s: breaker = %+v, want apiclient's defaults %+v", svc, got, want)
		}
	}
}

func TestGoDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		72 * time.Hour: "72h", 2 * time.Minute: "2m", 30 * time.Second: "30s", 200 * time.Millisecond: "200ms",
		90 * time.Minute: "1h30m", 61 * time.Second: "1m1s", time.Hour + time.Second: "1h0m1s",
	} {
		if got := goDuration(d); got != want {
			t.Errorf("goDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(want); err != nil || back != d {
			t.Errorf("%q does not parse back to %v", want, d)
		}
	}
}
