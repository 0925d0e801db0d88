// Package gem holds the routemaster-drain gem's conventions that several library packages
// share, so each value is written once: cache, dirty and reorder export them as their own
// defaults (cache.DefaultNamespace, dirty.DefaultNamespace, reorder.DefaultTTL...), and
// pkg/config shows those as the defaults of the variables that set them.
package gem

import (
	"fmt"
	"strings"
	"time"
)

// Namespace prefixes every Redis key when a Redis URL names none: the gem's "rm".
const Namespace = "rm"

// Expiry is the TTL of cache entries and of the filter's per-URL state: 90 days, the gem's
// ROUTEMASTER_CACHE_EXPIRY default.
const Expiry = 90 * 24 * time.Hour

// CheckNamespace returns the error of package pkg's Options.Namespace ns, or nil: a namespace
// becomes part of hash-tagged Redis keys, so it must not contain braces.
func CheckNamespace(pkg, ns string) error {
	if strings.ContainsAny(ns, "{}") {
		return fmt.Errorf("%s: Options.Namespace %q must not contain braces", pkg, ns)
	}
	return nil
}
