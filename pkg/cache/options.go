package cache

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/internal/gem"
)

// Defaults of Options: what New uses for a zero field. pkg/config shows the same values as
// the defaults of the variables that set them.
const (
	// DefaultNamespace prefixes every key: the gem's "rm".
	DefaultNamespace = gem.Namespace
	// DefaultExpiry is the TTL of cache hashes: 90 days, the gem's ROUTEMASTER_CACHE_EXPIRY
	// default.
	DefaultExpiry = gem.Expiry
	// DefaultMaxBody is the largest body stored, the API client's own cap
	// (apiclient.DefaultMaxBody, DRAIN_WARM_MAX_BODY: 4 MiB).
	DefaultMaxBody = apiclient.DefaultMaxBody
	// DefaultParallel bounds the Gets that Go and GetMany run at once per Cache.
	DefaultParallel = 16
)

// Options configure a Cache (New). Every field is optional: the zero value is a read-only
// cache (no Fetcher) under DefaultNamespace with the defaults above, no hooks and no metrics.
type Options struct {
	// Namespace prefixes every key (the Redis URL's namespace segment; default
	// DefaultNamespace). It must not contain braces.
	Namespace string
	// Expiry is the TTL set on every write (ROUTEMASTER_CACHE_EXPIRY; default DefaultExpiry).
	Expiry time.Duration
	// Fetcher reads the origin on a miss (APIFetcher for the API client). Without one, Get
	// fails with ErrNoFetcher on a miss.
	Fetcher Fetcher
	// MaxBody is the largest body stored, in bytes (DRAIN_WARM_MAX_BODY; default
	// DefaultMaxBody); negative means no limit.
	MaxBody int64
	// Parallel bounds the Gets that Go and GetMany run at once, together, per Cache (default
	// DefaultParallel). Calls beyond it wait for a slot; Get, Refresh and Lookup called
	// directly are not counted.
	Parallel int
	// Hooks are called on hits, misses and busts.
	Hooks Hooks
	// Registerer, when set, receives the cache's counters (drain_cache_*_total).
	Registerer prometheus.Registerer
	// TracerProvider makes the span of each conditional store ("cache.store"), child of the
	// span in the caller's context (default otel.GetTracerProvider(), a no-op until the app
	// installs an SDK).
	TracerProvider trace.TracerProvider
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Expiry == 0 {
		o.Expiry = DefaultExpiry
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Parallel == 0 {
		o.Parallel = DefaultParallel
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	return o
}

// validate checks o after withDefaults.
func (o Options) validate() error {
	if err := gem.CheckNamespace("cache", o.Namespace); err != nil {
		return err
	}
	switch {
	case o.Expiry < time.Millisecond:
		return fmt.Errorf("cache: Options.Expiry %v must be at least 1ms", o.Expiry)
	case o.Parallel < 1:
		return fmt.Errorf("cache: Options.Parallel %d must be at least 1", o.Parallel)
	}
	return nil
}
