package config

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/replication"
	"github.com/routemaster-drain/drain/pkg/stream"
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
	// Secret marks a value that carries credentials. Load then also reads <Name>_FILE: the
	// name of a file whose content, without a final newline, is the value (Docker and
	// Kubernetes secrets are files). Setting both is an error; Usage lists the _FILE variant.
	Secret bool
}

// FileSuffix is appended to a secret variable's name to name the file holding its value
// (ROUTEMASTER_CACHE_AUTH_FILE=/run/secrets/cache-auth).
const FileSuffix = "_FILE"

var (
	all      = []Service(nil)
	ingest   = []Service{Ingest, Drainctl}
	redisers = []Service{Filter, Warmer, Sweeper, Drainctl}
	cachers  = []Service{Filter, Warmer, Drainctl}
	fetchers = []Service{Warmer, Drainctl}
	consumer = []Service{Filter, Warmer}
	retriers = []Service{Filter, Warmer, Sweeper}
	sweepers = []Service{Sweeper, Drainctl}
)

// Vars is every variable the drain reads, in the order Usage prints them.
//
// A variable that sets a library option shows that library's default (stream.DefaultMaxAge,
// apiclient.DefaultTimeout, dirty.DefaultLeaseTTL...), read from the package, never copied:
// a default lives in one place. The defaults written here are the services' own (ingest's
// limits, DRAIN_CONCURRENCY, the warmer's and sweeper's knobs) and the zero values of the
// libraries' options (file storage, DLQ kept until replayed, TLS verification and breakers
// off).
var Vars = []Var{
	{Name: "NATS_URL", Default: stream.DefaultURL, Services: all, Help: "NATS server URL(s), comma separated; user:password@ or token@ in the URL authenticate; tls:// forces TLS", Secret: true},
	{Name: "NATS_CREDS", Services: all, Help: "path of a NATS credentials (.creds) file"},
	{Name: "NATS_TLS_CA", Services: all, Help: "path of a PEM CA bundle to verify the NATS server"},
	{Name: "NATS_TLS_CERT", Services: all, Help: "path of a PEM client certificate for NATS (with NATS_TLS_KEY)"},
	{Name: "NATS_TLS_KEY", Services: all, Help: "path of the PEM key of NATS_TLS_CERT"},
	{Name: "DRAIN_PREFIX", Default: stream.DefaultPrefix, Services: all, Help: "prefix of every subject, stream and durable consumer name ([A-Za-z0-9_-]+)"},
	{Name: "DRAIN_STREAM_REPLICAS", Default: strconv.Itoa(stream.DefaultReplicas), Services: all, Help: "JetStream replicas of every stream (1, 3 or 5)"},
	{Name: "DRAIN_STREAM_MANAGE", Default: string(stream.ManageCreate), Services: all, Help: "create: create missing streams, bucket and consumers, never change existing ones (what differs is logged); update: create or update them to these settings; none: change nothing, only check (/readyz names what is missing)"},
	{Name: "DRAIN_STREAM_MAX_AGE", Default: goDuration(stream.DefaultMaxAge), Services: all, Help: "how long streams keep messages (Go duration)"},
	{Name: "DRAIN_STREAM_STORAGE", Default: "file", Services: all, Help: "stream storage: file or memory"},
	{Name: "DRAIN_DUPLICATE_WINDOW", Default: goDuration(stream.DefaultDuplicateWindow), Services: all, Help: "JetStream duplicate window: a re-sent batch inside it is stored once"},
	{Name: "DRAIN_DLQ_MAX_AGE", Default: "0", Services: all, Help: "how long dead letters are kept (Go duration); 0 keeps them until replayed"},
	{Name: "DRAIN_DLQ_MAX_BYTES", Default: strconv.FormatInt(stream.DefaultDLQMaxBytes, 10), Services: all, Help: "most bytes of dead letters kept; a full DLQ makes consumers retry instead of dropping"},
	{Name: "DRAIN_LOG_LEVEL", Default: "info", Services: all, Help: "debug, info, warn or error (JSON logs on stderr)"},
	{Name: "DRAIN_SHUTDOWN_TIMEOUT", Default: "25s", Services: all, Help: "how long SIGTERM waits for in-flight work"},

	{Name: "ROUTEMASTER_DRAIN_TOKENS", Required: []Service{Ingest}, Services: ingest, Help: "comma-separated tokens the bus authenticates with (the Basic-auth username); trimmed, empty ones ignored", Secret: true},
	{Name: "DRAIN_INGEST_ADDR", Default: ":8080", Services: ingest, Help: "ingest listen address"},
	{Name: "DRAIN_INGEST_PATH", Default: "/events", Services: ingest, Help: "path the bus posts to (with or without a trailing /)"},
	{Name: "DRAIN_INGEST_MAX_BODY", Default: "1048576", Services: ingest, Help: "largest accepted body in bytes (413 beyond)"},
	{Name: "DRAIN_INGEST_MAX_EVENTS", Default: "10000", Services: ingest, Help: "most events in one batch (413 beyond)"},
	{Name: "DRAIN_INGEST_MAX_INFLIGHT", Default: "256", Services: ingest, Help: "most batches being published at once (503 with Retry-After beyond)"},
	{Name: "DRAIN_INGEST_PUBLISH_TIMEOUT", Default: "3s", Services: ingest, Help: "how long a batch may wait for JetStream before 503"},
	{Name: "DRAIN_INGEST_RETRY_AFTER", Default: "5", Services: ingest, Help: "seconds in the Retry-After header of a 503"},
	{Name: "DRAIN_INGEST_TLS_CERT", Services: ingest, Help: "PEM certificate file: serve HTTPS (with DRAIN_INGEST_TLS_KEY)"},
	{Name: "DRAIN_INGEST_TLS_KEY", Services: ingest, Help: "PEM key file of DRAIN_INGEST_TLS_CERT"},
	{Name: "DRAIN_METRICS_MAX_TOPICS", Default: "100", Services: []Service{Ingest}, Help: "most topics with a topic label of their own in drain_ingest_events_total (the first ones seen); the others share 'other'"},
	{Name: "DRAIN_SIPHON_TOPICS", Services: ingest, Help: "comma-separated topics routed to <prefix>.siphon.<topic> instead of the filter"},

	{Name: "DRAIN_ADMIN_ADDR", Override: map[Service]string{Ingest: ":9090", Filter: ":9091", Warmer: ":9092", Sweeper: ":9093"},
		Services: []Service{Ingest, Filter, Warmer, Sweeper}, Help: "admin listen address for /healthz, /readyz, /metrics, served from the start (ingest :9090, filter :9091, warmer :9092, sweeper :9093)"},
	{Name: "DRAIN_PPROF", Default: "false", Services: []Service{Ingest, Filter, Warmer, Sweeper}, Help: "serve the Go profiler (net/http/pprof) on the admin address under /debug/pprof/ when true; off by default (profiles show internals and cost CPU while taken)"},
	{Name: "ROUTEMASTER_DRAIN_REDIS", Default: "redis://127.0.0.1:6379/0", Services: redisers, Help: "Redis for filter state and the dirty map: redis[s]://[user:pass@]host:port/db[/namespace][?go-redis options] (namespace default " + DefaultNamespace + "); several comma-separated URLs (db 0) are Redis Cluster seed nodes; ?master_name=M names Sentinels", Secret: true},
	{Name: "ROUTEMASTER_CACHE_REDIS", Services: cachers, Help: "Redis for the cache, same form, a list for Redis Cluster (default: ROUTEMASTER_DRAIN_REDIS)", Secret: true},
	{Name: "DRAIN_REDIS_WAIT_REPLICAS", Default: "0", Services: redisers, Help: "replicas that must confirm every Redis write (WAIT) before a stage acks its message or drainctl answers; fewer within DRAIN_REDIS_WAIT_TIMEOUT is an outage, retried; 0 waits for none"},
	{Name: "DRAIN_REDIS_WAIT_TIMEOUT", Default: goDuration(replication.DefaultTimeout), Services: redisers, Help: "how long a write waits for DRAIN_REDIS_WAIT_REPLICAS (below the Redis read timeout, 3s by default)"},
	{Name: "ROUTEMASTER_CACHE_EXPIRY", Default: seconds(cache.DefaultExpiry), Services: redisers, Help: "TTL in whole seconds of cache entries and filter state (90 days)"},

	{Name: "DRAIN_CACHE_MODE", Default: "off", Services: []Service{Filter}, Help: "off (Mapping), bust (CacheBusting) or warm (Caching: also publish warm requests)"},
	{Name: "DRAIN_FILTER_DIRTY", Default: "true", Services: []Service{Filter}, Help: "mark fresh non-noop events' URLs in the dirty map"},
	{Name: "DRAIN_CONCURRENCY", Default: "32", Override: map[Service]string{Warmer: "64"}, Services: consumer, Help: "messages a filter process handles at once, fetches a warmer process runs at once; both wait on network round trips, so 32 and 64 by default"},
	{Name: "DRAIN_MAX_ACK_PENDING", Default: strconv.Itoa(stream.DefaultMaxAckPending), Services: consumer, Help: "JetStream MaxAckPending of the durable consumer (shared by replicas)"},
	{Name: "DRAIN_MAX_DELIVER", Default: strconv.Itoa(stream.DefaultMaxDeliver), Services: retriers, Help: "failures of a message's own before it is dead-lettered (outages, crashes and expired AckWaits are not counted; sweeper: webhook refusals of one URL)"},
	{Name: "DRAIN_ACK_WAIT", Default: goDuration(stream.DefaultAckWait), Services: consumer, Help: "JetStream AckWait: an unacked message is redelivered after it"},
	{Name: "DRAIN_RETRY_BACKOFF", Default: goDuration(stream.DefaultBackoff), Services: retriers, Help: "first retry delay (sweeper: of a URL the webhook refused); doubles per delivery up to DRAIN_RETRY_BACKOFF_MAX"},
	{Name: "DRAIN_RETRY_BACKOFF_MAX", Default: goDuration(stream.DefaultBackoffMax), Services: retriers, Help: "longest retry delay"},

	{Name: "ROUTEMASTER_QUEUE_NAME", Default: "routemaster", Services: []Service{Warmer}, Help: "name of the warmers' shared durable consumer (prefixed by DRAIN_PREFIX)"},
	{Name: "DRAIN_WARM_HOST_CONCURRENCY", Default: "64", Services: []Service{Warmer}, Help: "most fetches at once per origin host, per process"},
	{Name: "DRAIN_WARM_ALLOW_HOSTS", Services: fetchers, Help: "comma-separated host names (or *.domain) the warmer may fetch; empty allows every host (the warmer warns); link-local addresses are never fetched"},
	{Name: "DRAIN_WARM_MAX_BODY", Default: strconv.FormatInt(apiclient.DefaultMaxBody, 10), Services: fetchers, Help: "largest resource body fetched, in bytes"},
	{Name: "DRAIN_WARM_COALESCE", Default: "200ms", Services: []Service{Warmer}, Help: "least time between two fetches of one URL by one process"},
	{Name: "ROUTEMASTER_CACHE_AUTH", Services: fetchers, Help: "per-host Basic auth: host-regexp:user:pass,... (first match wins; whole host must match)", Secret: true},
	{Name: "DRAIN_WARM_AUTH_OVER_HTTP", Default: "false", Services: fetchers, Help: "also send ROUTEMASTER_CACHE_AUTH credentials to plain http URLs (by default only https ones get them)"},
	{Name: "ROUTEMASTER_CACHE_TIMEOUT", Default: seconds(apiclient.DefaultTimeout), Services: fetchers, Help: "origin timeout in seconds (float)"},
	{Name: "ROUTEMASTER_CACHE_VERIFY_SSL", Default: "false", Services: fetchers, Help: "verify origin TLS certificates only when exactly 'true'"},
	{Name: "ROUTEMASTER_API_CLIENT_USER_AGENT", Default: apiclient.DefaultUserAgent, Services: fetchers, Help: "User-Agent sent to origins"},
	{Name: "ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT", Default: "NO", Services: fetchers, Help: "YES/TRUE/ON/1 enables the per-host circuit breaker"},
	{Name: "ROUTEMASTER_CIRCUIT_BREAKER_SLEEP_WINDOW", Default: seconds(apiclient.DefaultSleepWindow), Services: fetchers, Help: "seconds an open circuit stays open; <host>.ROUTEMASTER_CIRCUIT_BREAKER_* overrides per host"},
	{Name: "ROUTEMASTER_CIRCUIT_BREAKER_TIME_WINDOW", Default: seconds(apiclient.DefaultTimeWindow), Services: fetchers, Help: "seconds over which the error rate is counted"},
	{Name: "ROUTEMASTER_CIRCUIT_BREAKER_VOLUME_THRESHOLD", Default: strconv.Itoa(apiclient.DefaultVolumeThreshold), Services: fetchers, Help: "least requests in the window before the circuit may open"},
	{Name: "ROUTEMASTER_CIRCUIT_BREAKER_ERROR_THRESHOLD", Default: strconv.Itoa(apiclient.DefaultErrorThreshold), Services: fetchers, Help: "percentage of errors that opens the circuit"},
	{Name: "DRAIN_BREAKER_MAX_HOSTS", Default: strconv.Itoa(apiclient.DefaultBreakerMaxHosts), Services: fetchers, Help: "most origin hosts with a circuit breaker of their own (<host>. overrides not counted); an open breaker is kept, one idle for its time window makes room, else new hosts share the breaker 'other'"},
	{Name: "DRAIN_METRICS_MAX_HOSTS", Default: strconv.Itoa(apiclient.DefaultMetricsMaxHosts), Services: fetchers, Help: "most origin hosts with a host label of their own in drain_apiclient_* (exact DRAIN_WARM_ALLOW_HOSTS entries and <host>. overrides always have one); the others share 'other'"},

	{Name: "DRAIN_SWEEP_INTERVAL", Default: "5m", Services: []Service{Sweeper}, Help: "sweeper period (Go duration)"},
	{Name: "DRAIN_SWEEP_BATCH", Default: "100", Services: sweepers, Help: "URLs leased and handed on per batch"},
	{Name: "DRAIN_SWEEP_LEASE", Default: goDuration(dirty.DefaultLeaseTTL), Services: sweepers, Help: "how long a leased URL stays out of the map before it returns (crash safety)"},
	{Name: "DRAIN_SWEEP_PUBLISH", Default: "true", Services: []Service{Sweeper}, Help: "hand swept URLs to <prefix>.swept"},
	{Name: "DRAIN_SWEEP_WEBHOOK_URL", Services: []Service{Sweeper}, Help: "also POST each swept batch (JSON array of URLs) here; 2xx means done, a 4xx (but 401, 403, 404, 405, 407, 408, 429) refuses URLs of it", Secret: true},

	{Name: "DRAIN_INGEST_URL", Default: "http://127.0.0.1:8080/events", Services: []Service{Drainctl}, Help: "drainctl send: where ingest listens"},
	{Name: "DRAIN_STATUS_ADMIN_URLS", Services: []Service{Drainctl}, Help: "drainctl status and console: comma-separated name=URL of each service's admin address (filter=http://filter:9091,...); each /readyz is reported, each /metrics read for circuit breakers"},
	{Name: "DRAIN_CONSOLE_ADDR", Default: "127.0.0.1:9099", Services: []Service{Drainctl}, Help: "drainctl console: listen address of the web console"},
	{Name: "DRAIN_CONSOLE_TOKEN", Services: []Service{Drainctl}, Secret: true, Help: "drainctl console: token every request must carry (Bearer, or the Basic-auth password); required unless DRAIN_CONSOLE_ADDR is a loopback address"},
}

// services are the four service binaries (drainctl makes no spans).
var services = []Service{Ingest, Filter, Warmer, Sweeper}

// OTELVars are the standard OpenTelemetry variables the services honour. Load does not read
// them: the services' tracing set-up and the OpenTelemetry SDK do (docs/operations.md,
// "Tracing"). Tracing is off, with no exporter and a no-op tracer provider, unless
// OTEL_TRACES_EXPORTER or an OTLP endpoint is set. Usage lists them.
var OTELVars = []Var{
	{Name: "OTEL_TRACES_EXPORTER", Services: services, Help: "otlp exports spans, none (or unset without an endpoint) turns tracing off"},
	{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Services: services, Help: "OTLP collector base URL, e.g. http://otel-collector:4318; setting it turns tracing on"},
	{Name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Services: services, Help: "full OTLP traces URL, instead of the base endpoint"},
	{Name: "OTEL_EXPORTER_OTLP_PROTOCOL", Default: "http/protobuf", Services: services, Help: "http/protobuf or grpc (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL overrides it)"},
	{Name: "OTEL_EXPORTER_OTLP_HEADERS", Services: services, Help: "key=value,... headers of every export (authentication)"},
	{Name: "OTEL_SERVICE_NAME", Default: "drain-<service>", Services: services, Help: "service.name of the spans"},
	{Name: "OTEL_RESOURCE_ATTRIBUTES", Services: services, Help: "key=value,... resource attributes (deployment.environment=...)"},
	{Name: "OTEL_TRACES_SAMPLER", Default: "parentbased_always_on", Services: services, Help: "sampler, with OTEL_TRACES_SAMPLER_ARG (e.g. parentbased_traceidratio and 0.1)"},
	{Name: "OTEL_SDK_DISABLED", Default: "false", Services: services, Help: "true turns tracing off whatever else is set"},
}

// goDuration formats d as a Go duration without zero units: 72h, 2m, 30s, 200ms.
func goDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// seconds formats d as a number of seconds, as the gem's variables take them: 60, 0.5.
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

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

// Usage writes the variables service reads, with defaults and meanings, for -h, and the
// <NAME>_FILE variant of each secret one.
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
		if v.Secret {
			fmt.Fprintf(tw, "  %s\t(empty)\tfile holding %s (secret: its content without a final newline; not with %s)\n", v.Name+FileSuffix, v.Name, v.Name)
		}
	}
	tw.Flush()
	var otelVars []Var
	for _, v := range OTELVars {
		if v.readBy(service) {
			otelVars = append(otelVars, v)
		}
	}
	if len(otelVars) > 0 {
		fmt.Fprintln(w, "OpenTelemetry tracing, standard variables (off unless OTEL_TRACES_EXPORTER or an OTLP endpoint is set; the W3C traceparent is passed on either way):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, v := range otelVars {
			def := v.Default
			if def == "" {
				def = "(empty)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Help)
		}
		tw.Flush()
		fmt.Fprintln(w, "  OTEL_EXPORTER_OTLP_* (timeout, compression, certificates) and OTEL_BSP_* apply as the OpenTelemetry SDK documents them.")
	}
	if service == Warmer || service == Drainctl {
		fmt.Fprintln(w, "  <host>.ROUTEMASTER_CIRCUIT_BREAKER_{SLEEP_WINDOW,TIME_WINDOW,VOLUME_THRESHOLD,ERROR_THRESHOLD} override per host.")
	}
}
