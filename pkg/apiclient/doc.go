// Package apiclient fetches resources from origin APIs the way the routemaster-drain gem's
// APIClient does, built on resty and sony/gobreaker, with the gem's known bugs fixed.
//
// Build one Client per process from Options, a plain struct whose zero value is the defaults
// (the Default* constants); the package never reads the environment. The drain's services
// pass pkg/config's Config.Fetch, which maps ROUTEMASTER_CACHE_*, the circuit-breaker
// variables and DRAIN_WARM_* onto Options:
//
//	c, err := apiclient.New(apiclient.Options{UserAgent: "billing", Logger: log, Registerer: reg})
//	resp, err := c.Get(ctx, "https://api.example.com/widgets/1", apiclient.RequestOptions{Version: 2, Locale: "fr"})
//
// Requests carry a User-Agent (Options.UserAgent), `Accept: application/json` (`;v=N` with
// RequestOptions.Version) and `Accept-Language` (RequestOptions.Locale). Each attempt is
// bounded by Options.Timeout (ROUTEMASTER_CACHE_TIMEOUT); GET, HEAD, PUT, DELETE and
// OPTIONS are retried twice on a timeout, after 100 ms and 200 ms. Redirects are never
// followed.
//
// Per-host Basic auth comes from Options.Auth (ROUTEMASTER_CACHE_AUTH): the first rule whose
// pattern matches the whole host name wins, and a host that matches no rule gets no
// Authorization header. Credentials go to https URLs only unless Options.AuthOverHTTP.
//
// URLs name hosts, and URLs come from events, so the client bounds what they can reach and
// what they cost. It never connects to a link-local address (169.254.0.0/16, fe80::/10,
// where cloud metadata endpoints answer), whatever Options.AllowHosts says: its dialer checks
// the resolved address of every connection, so DNS rebinding does not get around it
// (ErrAddressNotAllowed). Metric host labels are bounded by Options.MetricsMaxHosts, the rest
// labelled OtherHost, and circuit breakers by BreakerOptions.MaxHosts, idle ones dropped.
//
// Every non-2xx status is a *StatusError (errors.As) whose Kind is one of the ErrXxx kinds
// (errors.Is also matches the group: ErrClientError, ErrServerError). Other failures are
// ErrTimeout, ErrConnection, ErrCircuitOpen, ErrHostNotAllowed (Options.AllowHosts),
// ErrAddressNotAllowed, ErrTooLarge (Options.MaxBody) or ErrBadURL. Retryable tells the ones
// worth retrying.
//
// With Options.Breaker.Enabled (ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT) each host has an
// in-process circuit breaker with the gem's four knobs (BreakerOptions) and per-host
// overrides (BreakerOptions.Hosts).
//
// GetAsync returns a Future for parallel reads (the gem's fget). Discover, HateoasResponse,
// Resource and Resource.Index follow HAL `_links` with RFC 6570 templates (Expand), and walk
// paginated collections as an iter.Seq2.
//
// docs/apiclient.md has the status table, the breaker semantics and the metrics.
package apiclient
