package apiclient

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of Options: what New uses for a zero field. pkg/config shows the same values as
// the defaults of the variables that set them.
const (
	// DefaultTimeout bounds one request attempt (ROUTEMASTER_CACHE_TIMEOUT, the gem's 1 s).
	DefaultTimeout = time.Second
	// DefaultUserAgent is the User-Agent header (ROUTEMASTER_API_CLIENT_USER_AGENT).
	DefaultUserAgent = "RoutemasterDrain - Go"
	// DefaultMaxBody is the largest response body read, in bytes (DRAIN_WARM_MAX_BODY: 4 MiB).
	DefaultMaxBody int64 = 4 << 20
	// DefaultConcurrency is how many futures (GetAsync, Index items) run at once per Client,
	// the gem's thread-pool maximum.
	DefaultConcurrency = 20
	// DefaultDiscoverTTL is how long Discover remembers a root document.
	DefaultDiscoverTTL = 5 * time.Minute
	// DefaultMetricsMaxHosts is how many origin hosts get a host label value of their own
	// (DRAIN_METRICS_MAX_HOSTS); the others share OtherHost.
	DefaultMetricsMaxHosts = 100
)

// OtherHost is the host label value, and the name of the shared circuit breaker, of the hosts
// beyond the bounds (Options.MetricsMaxHosts, BreakerOptions.MaxHosts), and the host label of
// every request refused before it reached a host of its own. Host names come from event data,
// so they never grow a metric or a map without bound.
const OtherHost = "other"

// Defaults of BreakerOptions: the gem's circuit breaker settings
// (ROUTEMASTER_CIRCUIT_BREAKER_*).
const (
	// DefaultSleepWindow is how long an open circuit stays open.
	DefaultSleepWindow = 60 * time.Second
	// DefaultTimeWindow is the rolling window over which outcomes are counted.
	DefaultTimeWindow = 120 * time.Second
	// DefaultVolumeThreshold is the least requests in the window before a circuit may open.
	DefaultVolumeThreshold = 50
	// DefaultErrorThreshold is the percentage of failed requests that opens a circuit.
	DefaultErrorThreshold = 50
	// DefaultBreakerMaxHosts is how many hosts have a circuit breaker of their own
	// (DRAIN_BREAKER_MAX_HOSTS), besides those with an override in BreakerOptions.Hosts.
	DefaultBreakerMaxHosts = 1000
)

// Options configure a Client (New). Every field is optional: the zero value is a client
// with the defaults above, no Basic auth, every host allowed, circuit breakers off and TLS
// certificates NOT verified (the gem's ROUTEMASTER_CACHE_VERIFY_SSL default; New logs a
// warning). pkg/config fills the origin settings from the environment (Config.Fetch); the
// caller adds its Logger and Registerer.
type Options struct {
	// Timeout bounds one attempt (default DefaultTimeout). GET, HEAD, PUT, DELETE and
	// OPTIONS are retried twice after a timeout.
	Timeout time.Duration
	// UserAgent is the User-Agent header (default DefaultUserAgent); an app sets its own name
	// here (the gem's source_peer).
	UserAgent string
	// VerifyTLS verifies origin certificates (ROUTEMASTER_CACHE_VERIFY_SSL=true), against
	// RootCAs when set, else the system roots.
	VerifyTLS bool
	// RootCAs, when set, verifies origin certificates against this pool instead of the
	// system roots (only used with VerifyTLS).
	RootCAs *x509.CertPool
	// Auth is the per-host Basic auth (ROUTEMASTER_CACHE_AUTH): the first rule whose Host
	// matches the whole host name wins; a host that matches none gets no Authorization. The
	// credentials are sent over https only, unless AuthOverHTTP.
	Auth []AuthRule
	// AuthOverHTTP lets Auth's credentials travel over plain http
	// (DRAIN_WARM_AUTH_OVER_HTTP=true). Off, an http URL whose host matches a rule is sent
	// without Authorization, and New's client logs one warning per rule.
	AuthOverHTTP bool
	// AllowHosts are the hosts the client may reach (DRAIN_WARM_ALLOW_HOSTS): "example.com"
	// exactly, "*.example.com" any host below example.com. Empty allows every host. Whatever
	// it says, the client never connects to a link-local address (ErrAddressNotAllowed).
	AllowHosts []string
	// MaxBody is the largest response body read, in bytes (default DefaultMaxBody); a larger
	// one is ErrTooLarge. Negative means no limit.
	MaxBody int64
	// Breaker configures the per-host circuit breakers (off unless Breaker.Enabled).
	Breaker BreakerOptions
	// Concurrency bounds how many futures run at once (default DefaultConcurrency). Futures
	// beyond it wait for a slot; synchronous calls are not bounded.
	Concurrency int
	// DiscoverTTL is how long Discover remembers a root document (default
	// DefaultDiscoverTTL).
	DiscoverTTL time.Duration
	// Transport, when set, is used (for example with custom dialing or connection limits)
	// instead of a clone of http.DefaultTransport. Its TLS settings are replaced by
	// VerifyTLS and RootCAs. Without a DialContext it gets the client's dialer, which refuses
	// link-local addresses before connecting; its own DialContext (and DialTLSContext) is
	// wrapped instead, and a connection it made to a link-local address is closed before
	// anything is sent on it.
	Transport *http.Transport
	// Resolver resolves origin host names for the client's dialer (default
	// net.DefaultResolver). The link-local check applies to the addresses it returns, at
	// every connection, so a name that later resolves elsewhere (DNS rebinding) is checked
	// again.
	Resolver *net.Resolver
	// MetricsMaxHosts is how many origin hosts get a host label value of their own (default
	// DefaultMetricsMaxHosts): the exact host names of AllowHosts and Breaker.Hosts, then
	// the first MetricsMaxHosts others a request was sent to; the rest share OtherHost.
	MetricsMaxHosts int
	// Logger receives the client's warnings (default slog.Default()). Credentials are never
	// logged.
	Logger *slog.Logger
	// Registerer, when set, receives the client's metrics (see docs/apiclient.md). A second
	// Client on the same registry shares the same series.
	Registerer prometheus.Registerer
	// TracerProvider makes a client span per attempt ("HTTP <method>"), child of the span in
	// the request's context (default otel.GetTracerProvider(), a no-op until the app
	// installs an SDK; the library never configures exporters).
	TracerProvider trace.TracerProvider
	// Propagator writes the trace context of each attempt into its headers, so the origin
	// continues the trace (default otel.GetTextMapPropagator(); the drain's services set it to
	// W3C traceparent and baggage). Nothing is written for an untraced context.
	Propagator propagation.TextMapPropagator
}

// AuthRule is one Basic auth rule (an entry of ROUTEMASTER_CACHE_AUTH): hosts whose whole
// name matches Host get User and Password.
type AuthRule struct {
	Host     *regexp.Regexp // should be anchored (^...$) to match the whole host name
	User     string         // Basic auth user
	Password string         // Basic auth password: never log it
}

// BreakerOptions configure the circuit breakers: one per origin host, in-process. A zero
// field takes its default above; a host's override in Hosts takes, for each zero field, the
// value of these defaults.
type BreakerOptions struct {
	// Enabled turns the breakers on (ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT).
	Enabled bool
	// SleepWindow is how long an open circuit stays open before a probe (default
	// DefaultSleepWindow).
	SleepWindow time.Duration
	// TimeWindow is the rolling window over which outcomes are counted (default
	// DefaultTimeWindow).
	TimeWindow time.Duration
	// VolumeThreshold is the least requests in the window before the circuit may open
	// (default DefaultVolumeThreshold).
	VolumeThreshold int
	// ErrorThreshold is the percentage of failures, 1 to 100, that opens the circuit
	// (default DefaultErrorThreshold).
	ErrorThreshold int
	// Hosts override the settings by host name, compared case-insensitively
	// (<host>.ROUTEMASTER_CIRCUIT_BREAKER_*). Each of them always has a breaker of its own.
	Hosts map[string]BreakerSettings
	// MaxHosts is how many other hosts have a breaker of their own (default
	// DefaultBreakerMaxHosts). A breaker that is not open and was not used for its
	// TimeWindow is dropped when a new host needs room (its counts have expired by then);
	// while every slot is busy, a new host shares the OtherHost breaker. Each breaker costs
	// about 2 KiB.
	MaxHosts int
}

// BreakerSettings are the settings of one host's circuit breaker; see BreakerOptions.
type BreakerSettings struct {
	SleepWindow     time.Duration
	TimeWindow      time.Duration
	VolumeThreshold int
	ErrorThreshold  int
}

// For returns the settings of host's circuit: its override in Hosts (host names compare
// case-insensitively), each zero field filled from b's defaults, or b's defaults.
func (b BreakerOptions) For(host string) BreakerSettings {
	b = b.withDefaults()
	def := BreakerSettings{SleepWindow: b.SleepWindow, TimeWindow: b.TimeWindow, VolumeThreshold: b.VolumeThreshold, ErrorThreshold: b.ErrorThreshold}
	o, ok := b.Hosts[host]
	if !ok {
		for h, s := range b.Hosts {
			if strings.EqualFold(h, host) {
				o, ok = s, true
				break
			}
		}
	}
	if !ok {
		return def
	}
	return o.fill(def)
}

func (b BreakerOptions) withDefaults() BreakerOptions {
	if b.SleepWindow == 0 {
		b.SleepWindow = DefaultSleepWindow
	}
	if b.TimeWindow == 0 {
		b.TimeWindow = DefaultTimeWindow
	}
	if b.VolumeThreshold == 0 {
		b.VolumeThreshold = DefaultVolumeThreshold
	}
	if b.ErrorThreshold == 0 {
		b.ErrorThreshold = DefaultErrorThreshold
	}
	if b.MaxHosts == 0 {
		b.MaxHosts = DefaultBreakerMaxHosts
	}
	return b
}

// configured reports whether host has an override in Hosts (case-insensitively).
func (b BreakerOptions) configured(host string) bool {
	if _, ok := b.Hosts[host]; ok {
		return true
	}
	for h := range b.Hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// fill returns s with its zero fields taken from def.
func (s BreakerSettings) fill(def BreakerSettings) BreakerSettings {
	if s.SleepWindow == 0 {
		s.SleepWindow = def.SleepWindow
	}
	if s.TimeWindow == 0 {
		s.TimeWindow = def.TimeWindow
	}
	if s.VolumeThreshold == 0 {
		s.VolumeThreshold = def.VolumeThreshold
	}
	if s.ErrorThreshold == 0 {
		s.ErrorThreshold = def.ErrorThreshold
	}
	return s
}

func (s BreakerSettings) validate() error {
	switch {
	case s.TimeWindow <= 0:
		return fmt.Errorf("time window %v must be positive", s.TimeWindow)
	case s.SleepWindow <= 0:
		return fmt.Errorf("sleep window %v must be positive", s.SleepWindow)
	case s.VolumeThreshold < 1:
		return fmt.Errorf("volume threshold %d must be at least 1", s.VolumeThreshold)
	case s.ErrorThreshold < 1 || s.ErrorThreshold > 100:
		return fmt.Errorf("error threshold %d must be a percentage from 1 to 100", s.ErrorThreshold)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	o.Breaker = o.Breaker.withDefaults()
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.DiscoverTTL == 0 {
		o.DiscoverTTL = DefaultDiscoverTTL
	}
	if o.MetricsMaxHosts == 0 {
		o.MetricsMaxHosts = DefaultMetricsMaxHosts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	if o.Propagator == nil {
		o.Propagator = otel.GetTextMapPropagator()
	}
	return o
}

// validate checks o after withDefaults.
func (o Options) validate() error {
	switch {
	case o.Timeout < 0:
		return fmt.Errorf("apiclient: Options.Timeout %v must be positive", o.Timeout)
	case o.Concurrency < 1:
		return fmt.Errorf("apiclient: Options.Concurrency %d must be at least 1", o.Concurrency)
	case o.DiscoverTTL < 0:
		return fmt.Errorf("apiclient: Options.DiscoverTTL %v must not be negative", o.DiscoverTTL)
	case o.MetricsMaxHosts < 1:
		return fmt.Errorf("apiclient: Options.MetricsMaxHosts %d must be at least 1", o.MetricsMaxHosts)
	case o.Breaker.MaxHosts < 1:
		return fmt.Errorf("apiclient: Options.Breaker.MaxHosts %d must be at least 1", o.Breaker.MaxHosts)
	}
	for i, r := range o.Auth {
		if r.Host == nil {
			return fmt.Errorf("apiclient: Options.Auth[%d] has no Host pattern", i)
		}
	}
	for _, h := range o.AllowHosts {
		if strings.TrimPrefix(h, "*.") == "" || strings.Contains(strings.TrimPrefix(h, "*."), "*") {
			return fmt.Errorf("apiclient: allowed host %q must be a host name or *.domain", h)
		}
	}
	if o.Breaker.Enabled {
		for host := range o.Breaker.Hosts {
			if err := o.Breaker.For(host).validate(); err != nil {
				return fmt.Errorf("apiclient: breaker of %s: %w", host, err)
			}
		}
		if err := o.Breaker.For("").validate(); err != nil {
			return fmt.Errorf("apiclient: breaker: %w", err)
		}
	}
	return nil
}

// RequestOptions adjust one request (the last argument of Get, Post, Do, GetAsync, the
// Resource methods...). The zero value sends `Accept: application/json`, no Accept-Language,
// and the URL as given. Several are merged in order: a later non-zero Version or Locale wins,
// and headers and query parameters are added, a later one replacing an earlier of the same
// name.
type RequestOptions struct {
	// Version asks for version Version of the representation: `Accept: application/json;v=N`.
	Version int
	// Locale sends `Accept-Language: <Locale>` when not empty.
	Locale string
	// Header holds request headers. They win over the client's own (User-Agent, Accept,
	// Authorization), as in the gem.
	Header http.Header
	// Query adds parameters to the URL (each replaces the URL's own of the same name).
	Query url.Values
}

// mergeRequest merges ros as RequestOptions documents.
func mergeRequest(ros []RequestOptions) RequestOptions {
	if len(ros) == 1 {
		return ros[0]
	}
	var m RequestOptions
	for _, r := range ros {
		if r.Version != 0 {
			m.Version = r.Version
		}
		if r.Locale != "" {
			m.Locale = r.Locale
		}
		for k, v := range r.Header {
			if m.Header == nil {
				m.Header = http.Header{}
			}
			m.Header[http.CanonicalHeaderKey(k)] = v
		}
		for k, v := range r.Query {
			if m.Query == nil {
				m.Query = url.Values{}
			}
			m.Query[k] = v
		}
	}
	return m
}
