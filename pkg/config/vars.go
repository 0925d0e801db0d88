package config

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Service names a binary; it selects which variables Load requires and Usage lists.
type Service string

// The binaries of the drain.
const (
	Ingest   Service = "ingest"
	Filter   Service = "filter"
	Warmer   Service = "warmer"
	Sweeper  Service = "sweeper"
	Drainctl Service = "drainctl"
)

// Var documents one environment variable.
type Var struct {
	Name     string
	Default  string             // "" with Required false means empty/unset
	Override map[Service]string // a service's own default, where it differs
	Required []Service
	Services []Service // nil means every service
	Help     string
}

var (
	all      = []Service(nil)
	ingest   = []Service{Ingest, Drainctl}
	redisers = []Service{Filter, Warmer, Sweeper, Drainctl}
	cachers  = []Service{Filter, Warmer, Drainctl}
	fetchers = []Service{Warmer, Drainctl}
	consumer = []Service{Filter, Warmer}
	sweepers = []Service{Sweeper, Drainctl}
)

// Vars is every variable the drain reads, in the order Usage prints them.
var Vars = []Var{
	{Name: "NATS_URL", Default: "nats://127.0.0.1:4222", Services: all, Help: "NATS server URL(s), comma separated; user:password@ or token@ in the URL authenticate; tls:// forces TLS"},
	{Name: "NATS_CREDS", Services: all, Help: "path of a NATS credentials (.creds) file"},
	{Name: "NATS_TLS_CA", Services: all, Help: "path of a PEM CA bundle to verify the NATS server"},
	{Name: "NATS_TLS_CERT", Services: all, Help: "path of a PEM client certificate for NATS (with NATS_TLS_KEY)"},
	{Name: "NATS_TLS_KEY", Services: all, Help: "path of the PEM key of NATS_TLS_CERT"},
	{Name: "DRAIN_PREFIX", Default: "routemaster", Services: all, Help: "prefix of every subject, stream and durable consumer name ([A-Za-z0-9_-]+)"},
	{Name: "DRAIN_STREAM_REPLICAS", Default: "1", Services: all, Help: "JetStream replicas of every stream (1, 3 or 5)"},
	{Name: "DRAIN_STREAM_MANAGE", Default: "create", Services: all, Help: "create: create missing streams, bucket and consumers, never change existing ones (what differs is logged); update: create or update them to these settings; none: change nothing, only check (/readyz names what is missing)"},
	{Name: "DRAIN_STREAM_MAX_AGE", Default: "72h", Services: all, Help: "how long streams keep messages (Go duration)"},
	{Name: "DRAIN_STREAM_STORAGE", Default: "file", Services: all, Help: "stream storage: file or memory"},
	{Name: "DRAIN_DUPLICATE_WINDOW", Default: "2m", Services: all, Help: "JetStream duplicate window: a re-sent batch inside it is stored once"},
	{Name: "DRAIN_DLQ_MAX_AGE", Default: "0", Services: all, Help: "how long dead letters are kept (Go duration); 0 keeps them until replayed"},
	{Name: "DRAIN_DLQ_MAX_BYTES", Default: "1073741824", Services: all, Help: "most bytes of dead letters kept; a full DLQ makes consumers retry instead of dropping"},
	{Name: "DRAIN_LOG_LEVEL", Default: "info", Services: all, Help: "debug, info, warn or error (JSON logs on stderr)"},
	{Name: "DRAIN_SHUTDOWN_TIMEOUT", Default: "25s", Services: all, Help: "how long SIGTERM waits for in-flight work"},

	{Name: "ROUTEMASTER_DRAIN_TOKENS", Required: []Service{Ingest}, Services: ingest, Help: "comma-separated tokens the bus authenticates with (the Basic-auth username); trimmed, empty ones ignored"},
	{Name: "DRAIN_INGEST_ADDR", Default: ":8080", Services: ingest, Help: "ingest listen address"},
	{Name: "DRAIN_INGEST_PATH", Default: "/events", Services: ingest, Help: "path the bus posts to (with or without a trailing /)"},
	{Name: "DRAIN_INGEST_MAX_BODY", Default: "1048576", Services: ingest, Help: "largest accepted body in bytes (413 beyond)"},
	{Name: "DRAIN_INGEST_MAX_EVENTS", Default: "10000", Services: ingest, Help: "most events in one batch (413 beyond)"},
	{Name: "DRAIN_INGEST_MAX_INFLIGHT", Default: "256", Services: ingest, Help: "most batches being published at once (503 with Retry-After beyond)"},
	{Name: "DRAIN_INGEST_PUBLISH_TIMEOUT", Default: "3s", Services: ingest, Help: "how long a batch may wait for JetStream before 503"},
	{Name: "DRAIN_INGEST_RETRY_AFTER", Default: "5", Services: ingest, Help: "seconds in the Retry-After header of a 503"},
	{Name: "DRAIN_INGEST_TLS_CERT", Services: ingest, Help: "PEM certificate file: serve HTTPS (with DRAIN_INGEST_TLS_KEY)"},
	{Name: "DRAIN_INGEST_TLS_KEY", Services: ingest, Help: "PEM key file of DRAIN_INGEST_TLS_CERT"},
	{Name: "DRAIN_SIPHON_TOPICS", Services: ingest, Help: "comma-separated topics routed to <prefix>.siphon.<topic> instead of the filter"},

	{Name: "DRAIN_ADMIN_ADDR", Services: []Service{Filter, Warmer, Sweeper}, Help: "admin listen address for /healthz, /readyz, /metrics (filter :9091, warmer :9092, sweeper :9093)"},
	{Name: "ROUTEMASTER_DRAIN_REDIS", Default: "redis://127.0.0.1:6379/0", Services: redisers, Help: "Redis for filter state and the dirty map: redis[s]://[user:pass@]host:port/db[/namespace][?go-redis options] (namespace default rm); several comma-separated URLs (db 0) are Redis Cluster seed nodes; ?master_name=M names Sentinels"},
	{Name: "ROUTEMASTER_CACHE_REDIS", Services: cachers, Help: "Redis for the cache, same form, a list for Redis Cluster (default: ROUTEMASTER_DRAIN_REDIS)"},
	{Name: "ROUTEMASTER_CACHE_EXPIRY", Default: "7776000", Services: redisers, Help: "TTL in whole seconds of cache entries and filter state (90 days)"},

	{Name: "DRAIN_CACHE_MODE", Default: "off", Services: []Service{Filter}, Help: "off (Mapping), bust (CacheBusting) or warm (Caching: also publish warm requests)"},
	{Name: "DRAIN_FILTER_DIRTY", Default: "true", Services: []Service{Filter}, Help: "mark fresh non-noop events' URLs in the dirty map"},
	{Name: "DRAIN_CONCURRENCY", Default: "32", Services: consumer, Help: "messages a filter or warmer process handles at once (fetches, for a warmer); both wait on network round trips, so 32 by default"},
	{Name: "DRAIN_MAX_ACK_PENDING", Default: "1000", Services: consumer, Help: "JetStream MaxAckPending of the durable consumer (shared by replicas)"},
	{Name: "DRAIN_MAX_DELIVER", Default: "20", Services: consumer, Help: "failures of a message's own before it is dead-lettered (outages, crashes and expired AckWaits are not counted)"},
	{Name: "DRAIN_ACK_WAIT", Default: "30s", Services: consumer, Help: "JetStream AckWait: an unacked message is redelivered after it"},
	{Name: "DRAIN_RETRY_BACKOFF", Default: "1s", Services: consumer, Help: "first retry delay; doubles per delivery up to DRAIN_RETRY_BACKOFF_MAX"},
	{Name: "DRAIN_RETRY_BACKOFF_MAX", Default: "30s", Services: consumer, Help: "longest retry delay"},

	{Name: "ROUTEMASTER_QUEUE_NAME", Default: "routemaster", Services: []Service{Warmer}, Help: "name of the warmers' shared durable consumer (prefixed by DRAIN_PREFIX)"},
	{Name: "DRAIN_WARM_HOST_CONCURRENCY", Default: "32", Services: []Service{Warmer}, Help: "most fetches at once per origin host, per process"},
	{Name: "DRAIN_WARM_ALLOW_HOSTS", Services: fetchers, Help: "comma-separated host names (or *.domain) the warmer may fetch; empty allows every host"},
	{Name: "DRAIN_WARM_MAX_BODY", Default: "4194304", Services: fetchers, Help: "largest resource body fetched, in bytes"},
	{Name: "DRAIN_WARM_COALESCE", Default: "200ms", Services: []Service{Warmer}, Help: "least time between two fetches of one URL by one process"},
	{Name: "ROUTEMASTER_CACHE_AUTH", Services: fetchers, Help: "per-host Basic auth: host-regexp:user:pass,... (first match wins; whole host must match)"},
	{Name: "ROUTEMASTER_CACHE_TIMEOUT", Default: "1", Services: fetchers, Help: "origin timeout in seconds (float)"},
	{Name: "ROUTEMASTER_CACHE_VERIFY_SSL", Default: "false", Services: fetchers, Help: "verify origin TLS certificates only when exactly 'true'"},
	{Name: "ROUTEMASTER_API_CLIENT_USER_AGENT", Default: "RoutemasterDrain - Go", Services: fetchers, Help: "User-Agent sent to origins"},
	{Name: "ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT", Default: "NO", Services: fetchers, Help: "YES/TRUE/ON/1 enables the per-host circuit breaker"},
	{Name: "ROUTEMASTER_CIRCUIT_BREAKER_SLEEP_WINDOW", Default: "60", Services: fetchers, Help: "seconds an open circuit stays open; <host>.ROUTEMASTER_CIRCUIT_BREAKER_* overrides per host"},
	{Name: "ROUTEMASTER_CIRCUIT_BREAKER_TIME_WINDOW", Default: "120", Services: fetchers, Help: "seconds over which the error rate is counted"},
	{Name: "ROUTEMASTER_CIRCUIT_BREAKER_VOLUME_THRESHOLD", Default: "50", Services: fetchers, Help: "least requests in the window before the circuit may open"},
	{Name: "ROUTEMASTER_CIRCUIT_BREAKER_ERROR_THRESHOLD", Default: "50", Services: fetchers, Help: "percentage of errors that opens the circuit"},

	{Name: "DRAIN_SWEEP_INTERVAL", Default: "5m", Services: []Service{Sweeper}, Help: "sweeper period (Go duration)"},
	{Name: "DRAIN_SWEEP_BATCH", Default: "100", Services: sweepers, Help: "URLs leased and handed on per batch"},
	{Name: "DRAIN_SWEEP_LEASE", Default: "60s", Services: sweepers, Help: "how long a leased URL stays out of the map before it returns (crash safety)"},
	{Name: "DRAIN_SWEEP_PUBLISH", Default: "true", Services: []Service{Sweeper}, Help: "hand swept URLs to <prefix>.swept"},
	{Name: "DRAIN_SWEEP_WEBHOOK_URL", Services: []Service{Sweeper}, Help: "also POST each swept batch (JSON array of URLs) here; 2xx means done"},

	{Name: "DRAIN_INGEST_URL", Default: "http://127.0.0.1:8080/events", Services: []Service{Drainctl}, Help: "drainctl send: where ingest listens"},
}

func (v Var) readBy(s Service) bool {
	if v.Services == nil {
		return true
	}
	for _, x := range v.Services {
		if x == s {
			return true
		}
	}
	return false
}

func (v Var) defaultFor(s Service) string {
	if d, ok := v.Override[s]; ok {
		return d
	}
	return v.Default
}

func (v Var) requiredBy(s Service) bool {
	for _, x := range v.Required {
		if x == s {
			return true
		}
	}
	return false
}

// Usage writes the variables service reads, with defaults and meanings, for -h.
func Usage(w io.Writer, service Service) {
	fmt.Fprintf(w, "Environment variables read by %s:\n", service)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range Vars {
		if !v.readBy(service) {
			continue
		}
		def := v.defaultFor(service)
		switch {
		case v.requiredBy(service):
			def = "(required)"
		case def == "":
			def = "(empty)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Help)
	}
	tw.Flush()
	if service == Warmer || service == Drainctl {
		fmt.Fprintln(w, "  <host>.ROUTEMASTER_CIRCUIT_BREAKER_{SLEEP_WINDOW,TIME_WINDOW,VOLUME_THRESHOLD,ERROR_THRESHOLD} override per host.")
	}
}
