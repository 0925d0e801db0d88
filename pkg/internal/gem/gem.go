// Package gem holds the routemaster-drain gem's conventions that several library packages
// share, so each value is written once: cache, dirty and reorder export them as their own
// defaults (cache.DefaultNamespace, dirty.DefaultNamespace, reorder.DefaultTTL...), and
// pkg/config shows those as the defaults of the variables that set them.
package gem

import "time"

// Namespace prefixes every Redis key when a Redis URL names none: the gem's "rm".
const Namespace = "rm"

// Expiry is the TTL of cache entries and of the filter's per-URL state: 90 days, the gem's
// ROUTEMASTER_CACHE_EXPIRY default.
const Expiry = 90 * 24 * time.Hour
