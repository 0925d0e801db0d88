package dirty

import (
	"fmt"
	"time"

	"github.com/routemaster-drain/drain/pkg/internal/gem"
)

// Defaults of Options: what New uses for a zero field. pkg/config shows the same values as
// the defaults of the variables that set them.
const (
	// DefaultNamespace is the key namespace: the gem's "rm".
	DefaultNamespace = gem.Namespace
	// DefaultLeaseTTL is how long Sweep and SweepOne hold a URL before it returns to the map
	// if the process dies (DRAIN_SWEEP_LEASE).
	DefaultLeaseTTL = 60 * time.Second
)

// Options configure a Map (New). The zero value is the gem's map: namespace "rm", leases of
// DefaultLeaseTTL, no hook.
type Options struct {
	// Namespace selects the map: its keys are {<Namespace>}:dirtymap:* (the Redis URL's
	// namespace segment; default DefaultNamespace). It must not contain braces.
	Namespace string
	// LeaseTTL is how long Sweep and SweepOne hold a URL (default DefaultLeaseTTL). A process
	// that dies mid-sweep gives its URLs back after this long. Sweep renews its leases every
	// third of it, so a slow sweep function keeps its URLs; SweepOne does not renew, so a
	// function slower than this may see its URL leased again by another sweeper. The batch
	// API (Lease, Renew) takes its TTL per call instead.
	LeaseTTL time.Duration
	// OnDirty, when set, is called with each URL that Mark finds newly dirty (the gem's
	// :dirty_entity event). It runs synchronously in Mark's goroutine. URLs marked by the
	// filter's own script do not pass through it.
	OnDirty func(url string)
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	return o
}

// validate checks o after withDefaults.
func (o Options) validate() error {
	if err := gem.CheckNamespace("dirty", o.Namespace); err != nil {
		return err
	}
	switch {
	case o.LeaseTTL < time.Millisecond:
		return fmt.Errorf("dirty: Options.LeaseTTL %v must be at least 1ms", o.LeaseTTL)
	}
	return nil
}
