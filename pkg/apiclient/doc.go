// Package apiclient fetches resources from origin APIs the way the routemaster-drain gem's
// APIClient does, built on resty and sony/gobreaker, with the gem's known bugs fixed.
//
// Build one Client per process from the fetch settings of the environment:
//
//	cfg, _ := config.Load(config.Warmer, os.Environ())
//	c, err := apiclient.New(cfg.Fetch, apiclient.WithRegisterer(reg), apiclient.WithLogger(log))
//	resp, err := c.Get(ctx, "https://api.example.com/widgets/1", apiclient.WithVersion(2), apiclient.WithLocale("fr"))
//
// Requests carry a User-Agent (ROUTEMASTER_API_CLIENT_USER_AGENT, or WithSourcePeer),
// `Accept: application/json` (`;v=N` with WithVersion) and `Accept-Language` (WithLocale).
// Each attempt is bounded by ROUTEMASTER_CACHE_TIMEOUT; GET, HEAD, PUT, DELETE and OPTIONS are
// retried twice on a timeout, after 100 ms and 200 ms. Redirects are never followed.
//
// Per-host Basic auth comes from ROUTEMASTER_CACHE_AUTH: the first rule whose pattern matches
// the whole host name wins, and a host that matches no rule gets no Authorization header.
//
// Every non-2xx status is a *StatusError (errors.As) whose Kind is one of the ErrXxx kinds
// (errors.Is also matches the group: ErrClientError, ErrServerError). Other failures are
// ErrTimeout, ErrConnection, ErrCircuitOpen, ErrHostNotAllowed (DRAIN_WARM_ALLOW_HOSTS),
// ErrTooLarge (DRAIN_WARM_MAX_BODY) or ErrBadURL. Retryable tells the ones worth retrying.
//
// With ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT each host has an in-process circuit breaker with
// the four ROUTEMASTER_CIRCUIT_BREAKER_* knobs and per-host overrides.
//
// GetAsync returns a Future for parallel reads (the gem's fget). Discover, HateoasResponse,
// Resource and Resource.Index follow HAL `_links` with RFC 6570 templates (Expand), and walk
// paginated collections as an iter.Seq2.
//
// docs/apiclient.md has the status table, the breaker semantics and the metrics.
package apiclient
