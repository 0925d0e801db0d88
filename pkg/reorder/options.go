package reorder

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
	// DefaultTTL is how long a URL's state is kept after it last advanced: 90 days, the gem's
	// ROUTEMASTER_CACHE_EXPIRY default.
	DefaultTTL = gem.Expiry
)

// Options configure a Filter (New). The zero value is the gem's filter: namespace "rm", state
// kept DefaultTTL.
type Options struct {
	// Namespace selects the state and the dirty set: keys {<Namespace>}:dirtymap:* (the Redis
	// URL's namespace segment; default DefaultNamespace). It must not contain braces.
	Namespace string
	// TTL is how long a URL's state is kept after it last advanced (ROUTEMASTER_CACHE_EXPIRY;
	// default DefaultTTL), at least 1ms.
	TTL time.Duration
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	return o
}

// validate checks o after withDefaults.
func (o Options) validate() error {
	if err := gem.CheckNamespace("reorder", o.Namespace); err != nil {
		return err
	}
	switch {
	case o.TTL < time.Millisecond:
		return fmt.Errorf("reorder: Options.TTL %v must be at least 1ms", o.TTL)
	}
	return nil
}
