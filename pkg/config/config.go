package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/replication"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// VarError is a start-up error about one variable.
type VarError struct {
	Name string
	Msg  string
}

func (e *VarError) Error() string { return e.Name + ": " + e.Msg }

// CacheMode selects what the filter does to the cache for each event.
type CacheMode string

// Cache modes: the gem's Mapping, CacheBusting and Caching drains.
const (
	CacheOff  CacheMode = "off"  // Mapping drain: no cache
	CacheBust CacheMode = "bust" // CacheBusting: bump the invalidation index
	CacheWarm CacheMode = "warm" // Caching: bump and publish a warm request
)

// Receiver configures the ingest HTTP receiver.
type Receiver struct {
	Tokens         []string      // ROUTEMASTER_DRAIN_TOKENS: tokens the bus may authenticate with
	Addr           string        // DRAIN_INGEST_ADDR: listen address
	Path           string        // DRAIN_INGEST_PATH: path the bus POSTs to, without a trailing /
	MaxBody        int64         // DRAIN_INGEST_MAX_BODY: largest request body, bytes
	MaxEvents      int           // DRAIN_INGEST_MAX_EVENTS: most events in one batch
	MaxInflight    int           // DRAIN_INGEST_MAX_INFLIGHT: requests handled at once
	PublishTimeout time.Duration // DRAIN_INGEST_PUBLISH_TIMEOUT: wait for JetStream's acks
	RetryAfter     int           // DRAIN_INGEST_RETRY_AFTER: Retry-After of a 503, seconds
	TLSCert        string        // DRAIN_INGEST_TLS_CERT: certificate file for HTTPS
	TLSKey         string        // DRAIN_INGEST_TLS_KEY: key file for HTTPS
	SiphonTopics   []string      // DRAIN_SIPHON_TOPICS: topics sent to <prefix>.siphon.<topic>
	MaxTopics      int           // DRAIN_METRICS_MAX_TOPICS: topics with a metric label of their own
}

// Consumer configures the durable JetStream consumer of a filter or warmer, shared by the
// service's replicas. The services map it onto stream.ConsumerConfig; MaxAckPending,
// MaxDeliver, AckWait and the backoff default to the stream package's defaults.
type Consumer struct {
	Concurrency     int           // DRAIN_CONCURRENCY: messages handled at once per process
	MaxAckPending   int           // DRAIN_MAX_ACK_PENDING: unacked messages per consumer
	MaxDeliver      int           // DRAIN_MAX_DELIVER: deliveries before a dead letter
	AckWait         time.Duration // DRAIN_ACK_WAIT: redelivery after this without an ack
	RetryBackoff    time.Duration // DRAIN_RETRY_BACKOFF: first retry delay
	RetryBackoffMax time.Duration // DRAIN_RETRY_BACKOFF_MAX: longest retry delay
}

// Warm configures the warmer service.
type Warm struct {
	QueueName       string        // ROUTEMASTER_QUEUE_NAME: names the warmer's consumer
	HostConcurrency int           // DRAIN_WARM_HOST_CONCURRENCY: fetches at once per host
	Coalesce        time.Duration // DRAIN_WARM_COALESCE: window merging requests for one URL
}

// Sweep configures the sweeper.
type Sweep struct {
	Interval   time.Duration // DRAIN_SWEEP_INTERVAL: time between sweeps
	Batch      int           // DRAIN_SWEEP_BATCH: most URLs in one hand-off
	Lease      time.Duration // DRAIN_SWEEP_LEASE: how long a batch is held
	Publish    bool          // DRAIN_SWEEP_PUBLISH: hand batches to <prefix>.swept
	WebhookURL string        // DRAIN_SWEEP_WEBHOOK_URL: POST batches here, "" for none
}

// AdminURL is one entry of DRAIN_STATUS_ADMIN_URLS: a service's name and the base URL of its
// admin address, without a trailing slash.
type AdminURL struct {
	Name string // as the operator named it: filter, warmer-2, ...
	URL  string // http(s)://host:port, the admin address's /readyz and /metrics are under it
}

// Console configures drainctl status and the web console.
type Console struct {
	AdminURLs []AdminURL // DRAIN_STATUS_ADMIN_URLS: services whose readiness and breakers are read
	Addr      string     // DRAIN_CONSOLE_ADDR: the console's listen address
	Token     string     // DRAIN_CONSOLE_TOKEN: what every console request carries; never log it
}

// Config is everything a drain process reads from its environment. Where a library package
// owns a setting, the field has that package's Options type (NATS, Streams, Fetch) or a
// method builds them (CacheOptions, ReorderOptions, DirtyOptions), so the environment is
// mapped onto the libraries in this one place; the caller adds what is not configuration
// (client names, loggers, registries, hooks).
type Config struct {
	// NATS is how to reach NATS (NATS_*); the caller sets Name, Log and the publishing bounds.
	NATS stream.ConnectOptions
	// Streams are the settings of every stream (DRAIN_PREFIX, DRAIN_STREAM_* (_MANAGE included),
	// DRAIN_DUPLICATE_WINDOW, DRAIN_DLQ_*); Streams.Names() derives every subject.
	Streams         stream.StreamOptions
	LogLevel        string        // DRAIN_LOG_LEVEL: debug, info, warn or error
	ShutdownTimeout time.Duration // DRAIN_SHUTDOWN_TIMEOUT: bound of the drain after SIGTERM
	AdminAddr       string        // DRAIN_ADMIN_ADDR: /healthz, /readyz, /metrics listen address
	Pprof           bool          // DRAIN_PPROF: serve net/http/pprof on the admin address

	DrainRedis  Redis         // ROUTEMASTER_DRAIN_REDIS: filter state and dirty map
	CacheRedis  Redis         // ROUTEMASTER_CACHE_REDIS: the cache (ROUTEMASTER_DRAIN_REDIS when unset)
	CacheExpiry time.Duration // ROUTEMASTER_CACHE_EXPIRY: TTL of every data key

	Ingest    Receiver  // ROUTEMASTER_DRAIN_TOKENS, DRAIN_INGEST_*, DRAIN_SIPHON_TOPICS
	CacheMode CacheMode // DRAIN_CACHE_MODE: off, bust or warm
	Dirty     bool      // DRAIN_FILTER_DIRTY: the filter marks fresh URLs dirty
	Consumer  Consumer  // DRAIN_CONCURRENCY, DRAIN_MAX_*, DRAIN_ACK_WAIT, DRAIN_RETRY_*
	// Fetch configures the API client the warmer and drainctl use to reach origins
	// (ROUTEMASTER_CACHE_AUTH, _TIMEOUT, _VERIFY_SSL, ROUTEMASTER_API_CLIENT_USER_AGENT, the
	// circuit breakers, DRAIN_WARM_ALLOW_HOSTS, DRAIN_WARM_MAX_BODY); the caller sets Logger
	// and Registerer.
	Fetch     apiclient.Options
	Warm      Warm    // ROUTEMASTER_QUEUE_NAME, DRAIN_WARM_HOST_CONCURRENCY, DRAIN_WARM_COALESCE
	Sweep     Sweep   // DRAIN_SWEEP_*
	IngestURL string  // DRAIN_INGEST_URL: where drainctl send posts
	Console   Console // DRAIN_STATUS_ADMIN_URLS, DRAIN_CONSOLE_*: drainctl status and console
}

// CacheOptions returns the cache settings of the environment: the namespace of
// ROUTEMASTER_CACHE_REDIS, ROUTEMASTER_CACHE_EXPIRY and DRAIN_WARM_MAX_BODY. The caller adds
// the Fetcher, Hooks and Registerer.
func (c *Config) CacheOptions() cache.Options {
	return cache.Options{Namespace: c.CacheRedis.Namespace, Expiry: c.CacheExpiry, MaxBody: c.Fetch.MaxBody}
}

// ReorderOptions returns the filter-state settings of the environment: the namespace of
// ROUTEMASTER_DRAIN_REDIS and ROUTEMASTER_CACHE_EXPIRY.
func (c *Config) ReorderOptions() reorder.Options {
	return reorder.Options{Namespace: c.DrainRedis.Namespace, TTL: c.CacheExpiry}
}

// DirtyOptions returns the dirty map settings of the environment: the namespace of
// ROUTEMASTER_DRAIN_REDIS and DRAIN_SWEEP_LEASE. The caller adds OnDirty.
func (c *Config) DirtyOptions() dirty.Options {
	return dirty.Options{Namespace: c.DrainRedis.Namespace, LeaseTTL: c.Sweep.Lease}
}

// prefixRE is what DRAIN_PREFIX and ROUTEMASTER_QUEUE_NAME may hold: a subject token that is
// also part of a stream or consumer name (as stream.StreamOptions.Prefix).
var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Load reads the configuration of service from environ (os.Environ() form: "KEY=value").
// It returns the first problem found as a *VarError.
func Load(service Service, environ []string) (*Config, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	r := reader{env: env, service: service}
	r.readSecretFiles()
	c := &Config{}

	c.NATS = stream.ConnectOptions{URL: r.str("NATS_URL"), Creds: r.str("NATS_CREDS"), TLSCA: r.str("NATS_TLS_CA"), TLSCert: r.str("NATS_TLS_CERT"), TLSKey: r.str("NATS_TLS_KEY")}
	if (c.NATS.TLSCert == "") != (c.NATS.TLSKey == "") {
		r.fail("NATS_TLS_CERT", "NATS_TLS_CERT and NATS_TLS_KEY must be set together")
	}
	c.Streams.Prefix = r.str("DRAIN_PREFIX")
	if !prefixRE.MatchString(c.Streams.Prefix) {
		r.fail("DRAIN_PREFIX", fmt.Sprintf("%q must match [A-Za-z0-9_-]+", c.Streams.Prefix))
	}
	// JetStream accepts an even number of replicas but loses quorum as easily as with one
	// fewer, and on a single server refuses every number but 1 at each declaration: only the
	// odd counts the help names are taken, and anything else stops the service at start.
	c.Streams.Replicas, _ = strconv.Atoi(r.oneOf("DRAIN_STREAM_REPLICAS", "1", "3", "5"))
	c.Streams.Manage = stream.Manage(r.oneOf("DRAIN_STREAM_MANAGE", "create", "update", "none"))
	c.Streams.MaxAge = r.duration("DRAIN_STREAM_MAX_AGE")
	switch s := r.str("DRAIN_STREAM_STORAGE"); s {
	case "file":
	case "memory":
		c.Streams.MemoryStorage = true
	default:
		r.fail("DRAIN_STREAM_STORAGE", fmt.Sprintf("%q must be file or memory", s))
	}
	c.Streams.DuplicateWindow = r.duration("DRAIN_DUPLICATE_WINDOW")
	if r.str("DRAIN_DLQ_MAX_AGE") != "0" {
		c.Streams.DLQMaxAge = r.duration("DRAIN_DLQ_MAX_AGE")
	}
	c.Streams.DLQMaxBytes = int64(r.intIn("DRAIN_DLQ_MAX_BYTES", 1<<20, 1<<40))
	if c.Streams.DuplicateWindow > c.Streams.MaxAge {
		r.fail("DRAIN_DUPLICATE_WINDOW", fmt.Sprintf("%v must not exceed DRAIN_STREAM_MAX_AGE (%v)", c.Streams.DuplicateWindow, c.Streams.MaxAge))
	}
	if c.Streams.DLQMaxAge > 0 && c.Streams.DuplicateWindow > c.Streams.DLQMaxAge {
		r.fail("DRAIN_DUPLICATE_WINDOW", fmt.Sprintf("%v must not exceed DRAIN_DLQ_MAX_AGE (%v)", c.Streams.DuplicateWindow, c.Streams.DLQMaxAge))
	}
	c.LogLevel = r.oneOf("DRAIN_LOG_LEVEL", "debug", "info", "warn", "error")
	c.ShutdownTimeout = r.duration("DRAIN_SHUTDOWN_TIMEOUT")
	c.AdminAddr = r.str("DRAIN_ADMIN_ADDR")
	c.Pprof = r.boolean("DRAIN_PPROF")

	if service != Ingest {
		c.DrainRedis = r.redis("ROUTEMASTER_DRAIN_REDIS", r.str("ROUTEMASTER_DRAIN_REDIS"))
		cache := r.str("ROUTEMASTER_CACHE_REDIS")
		if cache == "" {
			cache = r.str("ROUTEMASTER_DRAIN_REDIS")
		}
		c.CacheRedis = r.redis("ROUTEMASTER_CACHE_REDIS", cache)
		wait := replication.Options{Replicas: r.intIn("DRAIN_REDIS_WAIT_REPLICAS", 0, 64), Timeout: r.duration("DRAIN_REDIS_WAIT_TIMEOUT")}
		if wait.Timeout <= 0 {
			r.fail("DRAIN_REDIS_WAIT_TIMEOUT", fmt.Sprintf("%v must be positive", wait.Timeout))
		}
		for _, rc := range []struct {
			name string
			r    *Redis
		}{{"ROUTEMASTER_DRAIN_REDIS", &c.DrainRedis}, {"ROUTEMASTER_CACHE_REDIS", &c.CacheRedis}} {
			if rt := rc.r.readTimeout(); wait.Replicas > 0 && rt > 0 && wait.Timeout >= rt {
				r.fail("DRAIN_REDIS_WAIT_TIMEOUT", fmt.Sprintf("%v must be shorter than the read timeout of %s (%v): a WAIT's reply is read under it", wait.Timeout, rc.name, rt))
			}
			rc.r.Wait = wait
		}
		c.CacheExpiry = time.Duration(r.intIn("ROUTEMASTER_CACHE_EXPIRY", 1, 1<<31)) * time.Second
	}

	c.Ingest = Receiver{
		Tokens:         r.list("ROUTEMASTER_DRAIN_TOKENS"),
		Addr:           r.str("DRAIN_INGEST_ADDR"),
		Path:           strings.TrimSuffix(r.str("DRAIN_INGEST_PATH"), "/"),
		MaxBody:        int64(r.intIn("DRAIN_INGEST_MAX_BODY", 1024, 1<<30)),
		MaxEvents:      r.intIn("DRAIN_INGEST_MAX_EVENTS", 1, 1<<20),
		MaxInflight:    r.intIn("DRAIN_INGEST_MAX_INFLIGHT", 1, 1<<16),
		PublishTimeout: r.duration("DRAIN_INGEST_PUBLISH_TIMEOUT"),
		RetryAfter:     r.intIn("DRAIN_INGEST_RETRY_AFTER", 1, 3600),
		TLSCert:        r.str("DRAIN_INGEST_TLS_CERT"),
		TLSKey:         r.str("DRAIN_INGEST_TLS_KEY"),
		SiphonTopics:   r.list("DRAIN_SIPHON_TOPICS"),
		MaxTopics:      r.intIn("DRAIN_METRICS_MAX_TOPICS", 1, 1<<16),
	}
	if service == Ingest && len(c.Ingest.Tokens) == 0 {
		r.fail("ROUTEMASTER_DRAIN_TOKENS", "is required: a comma-separated list of the tokens the bus authenticates with")
	}
	if c.Ingest.Path == "" || c.Ingest.Path[0] != '/' {
		r.fail("DRAIN_INGEST_PATH", fmt.Sprintf("%q must start with /", r.str("DRAIN_INGEST_PATH")))
	}
	if (c.Ingest.TLSCert == "") != (c.Ingest.TLSKey == "") {
		r.fail("DRAIN_INGEST_TLS_CERT", "DRAIN_INGEST_TLS_CERT and DRAIN_INGEST_TLS_KEY must be set together")
	}

	c.CacheMode = CacheMode(r.oneOf("DRAIN_CACHE_MODE", "off", "bust", "warm"))
	c.Dirty = r.boolean("DRAIN_FILTER_DIRTY")
	c.Consumer = Consumer{
		Concurrency:     r.intIn("DRAIN_CONCURRENCY", 1, 4096),
		MaxAckPending:   r.intIn("DRAIN_MAX_ACK_PENDING", 1, 1<<20),
		MaxDeliver:      r.intIn("DRAIN_MAX_DELIVER", 1, 10000),
		AckWait:         r.duration("DRAIN_ACK_WAIT"),
		RetryBackoff:    r.duration("DRAIN_RETRY_BACKOFF"),
		RetryBackoffMax: r.duration("DRAIN_RETRY_BACKOFF_MAX"),
	}

	b := r.breaker("")
	c.Fetch = apiclient.Options{
		Auth:         r.auth("ROUTEMASTER_CACHE_AUTH"),
		AuthOverHTTP: r.boolean("DRAIN_WARM_AUTH_OVER_HTTP"),
		Timeout:      r.seconds("ROUTEMASTER_CACHE_TIMEOUT"),
		VerifyTLS:    r.str("ROUTEMASTER_CACHE_VERIFY_SSL") == "true",
		UserAgent:    r.str("ROUTEMASTER_API_CLIENT_USER_AGENT"),
		Breaker: apiclient.BreakerOptions{
			Enabled:     yes(r.str("ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT")),
			SleepWindow: b.SleepWindow, TimeWindow: b.TimeWindow, VolumeThreshold: b.VolumeThreshold, ErrorThreshold: b.ErrorThreshold,
			Hosts:    map[string]apiclient.BreakerSettings{},
			MaxHosts: r.intIn("DRAIN_BREAKER_MAX_HOSTS", 1, 1<<20),
		},
		AllowHosts:      r.list("DRAIN_WARM_ALLOW_HOSTS"),
		MaxBody:         int64(r.intIn("DRAIN_WARM_MAX_BODY", 1024, 1<<30)),
		MetricsMaxHosts: r.intIn("DRAIN_METRICS_MAX_HOSTS", 1, 1<<16),
	}
	for k := range env {
		if !lookupVar("ROUTEMASTER_CIRCUIT_BREAKER_SLEEP_WINDOW").readBy(service) {
			break
		}
		if host, _, ok := strings.Cut(k, ".ROUTEMASTER_CIRCUIT_BREAKER_"); ok && host != "" {
			if _, done := c.Fetch.Breaker.Hosts[host]; !done {
				c.Fetch.Breaker.Hosts[host] = r.breaker(host + ".")
			}
		}
	}
	c.Warm = Warm{
		QueueName:       r.str("ROUTEMASTER_QUEUE_NAME"),
		HostConcurrency: r.intIn("DRAIN_WARM_HOST_CONCURRENCY", 1, 4096),
		Coalesce:        r.duration("DRAIN_WARM_COALESCE"),
	}
	if !prefixRE.MatchString(c.Warm.QueueName) {
		r.fail("ROUTEMASTER_QUEUE_NAME", fmt.Sprintf("%q must match [A-Za-z0-9_-]+", c.Warm.QueueName))
	}
	c.Sweep = Sweep{
		Interval:   r.duration("DRAIN_SWEEP_INTERVAL"),
		Batch:      r.intIn("DRAIN_SWEEP_BATCH", 1, 100000),
		Lease:      r.duration("DRAIN_SWEEP_LEASE"),
		Publish:    r.boolean("DRAIN_SWEEP_PUBLISH"),
		WebhookURL: r.httpURL("DRAIN_SWEEP_WEBHOOK_URL"),
	}
	if service == Sweeper && !c.Sweep.Publish && c.Sweep.WebhookURL == "" {
		r.fail("DRAIN_SWEEP_PUBLISH", "is false and DRAIN_SWEEP_WEBHOOK_URL is empty: swept URLs would have nowhere to go")
	}
	c.IngestURL = r.httpURL("DRAIN_INGEST_URL")
	c.Console = Console{
		AdminURLs: r.adminURLs("DRAIN_STATUS_ADMIN_URLS"),
		Addr:      r.str("DRAIN_CONSOLE_ADDR"),
		Token:     r.str("DRAIN_CONSOLE_TOKEN"),
	}
	if _, _, err := net.SplitHostPort(c.Console.Addr); err != nil {
		r.fail("DRAIN_CONSOLE_ADDR", fmt.Sprintf("%q must be host:port", c.Console.Addr))
	}
	return c, r.err
}

// Default returns the configuration of service with every variable at its default (and the
// given overrides, "KEY=value"). It panics on a bad override; it is meant for tests and tools.
func Default(service Service, overrides ...string) *Config {
	c, err := Load(service, overrides)
	if err != nil {
		panic(err)
	}
	return c
}

type reader struct {
	env     map[string]string
	service Service
	err     error
}

func (r *reader) fail(name, msg string) {
	if r.err == nil {
		r.err = &VarError{Name: name, Msg: msg}
	}
}

// readSecretFiles replaces, for every secret variable the service reads, a <NAME>_FILE
// setting by the file's content (one final newline taken off), so the rest of Load sees it as
// <NAME>. Both set is an error naming both; an unreadable file is an error naming the variable
// and the path, never the content.
func (r *reader) readSecretFiles() {
	for _, v := range Vars {
		fileVar := v.Name + FileSuffix
		path := strings.TrimSpace(r.env[fileVar])
		if !v.Secret || path == "" || !v.readBy(r.service) {
			continue
		}
		if strings.TrimSpace(r.env[v.Name]) != "" {
			r.fail(fileVar, fmt.Sprintf("%s and %s are both set: set only one", v.Name, fileVar))
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			r.fail(fileVar, fmt.Sprintf("cannot read %s: %v", path, err))
			continue
		}
		s := strings.TrimSuffix(string(b), "\n")
		r.env[v.Name] = strings.TrimSuffix(s, "\r")
	}
}

func lookupVar(name string) Var {
	for _, v := range Vars {
		if v.Name == name {
			return v
		}
	}
	panic("config: undeclared variable " + name)
}

// str returns the trimmed value of name, or its declared default when unset or blank, or when
// the service does not read name (so a typo in another service's setting in a shared
// environment never stops this one).
func (r *reader) str(name string) string {
	v := lookupVar(name)
	if s := strings.TrimSpace(r.env[name]); s != "" && v.readBy(r.service) {
		return s
	}
	return v.defaultFor(r.service)
}

func (r *reader) list(name string) []string {
	var out []string
	for _, p := range strings.Split(r.str(name), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (r *reader) intIn(name string, lo, hi int) int {
	s := r.str(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		r.fail(name, fmt.Sprintf("%q must be a whole number from %d to %d", s, lo, hi))
		return lo
	}
	return n
}

func (r *reader) duration(name string) time.Duration {
	s := r.str(name)
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		r.fail(name, fmt.Sprintf("%q must be a positive Go duration such as 500ms, 30s or 5m", s))
		return time.Second
	}
	return d
}

func (r *reader) seconds(name string) time.Duration {
	s := r.str(name)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 3600 {
		r.fail(name, fmt.Sprintf("%q must be a number of seconds above 0 and at most 3600", s))
		return time.Second
	}
	return time.Duration(f * float64(time.Second))
}

func (r *reader) boolean(name string) bool {
	s := r.str(name)
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.fail(name, fmt.Sprintf("%q must be true or false", s))
	}
	return b
}

func (r *reader) oneOf(name string, allowed ...string) string {
	s := r.str(name)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	r.fail(name, fmt.Sprintf("%q must be one of %s", s, strings.Join(allowed, ", ")))
	return allowed[0]
}

func (r *reader) httpURL(name string) string {
	s := r.str(name)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := fmt.Sprintf("%q", s)
		if lookupVar(name).Secret { // the URL may carry credentials: never echo it
			shown = "the value"
		}
		r.fail(name, shown+" must be an absolute http(s) URL")
	}
	return s
}

var adminNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// adminURLs reads name=URL entries, names unique, URLs absolute http(s) without a path.
func (r *reader) adminURLs(name string) []AdminURL {
	var out []AdminURL
	seen := map[string]bool{}
	for _, entry := range r.list(name) {
		n, raw, ok := strings.Cut(entry, "=")
		n, raw = strings.TrimSpace(n), strings.TrimSuffix(strings.TrimSpace(raw), "/")
		if !ok || !adminNameRE.MatchString(n) {
			r.fail(name, fmt.Sprintf("entry %q must be name=URL with a name of [A-Za-z0-9_.-]", entry))
			return nil
		}
		if seen[n] {
			r.fail(name, fmt.Sprintf("name %q appears twice", n))
			return nil
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			r.fail(name, fmt.Sprintf("entry %q: the URL must be http(s)://host:port of an admin address", entry))
			return nil
		}
		seen[n] = true
		out = append(out, AdminURL{Name: n, URL: raw})
	}
	return out
}

func (r *reader) redis(name, raw string) Redis {
	rc, err := ParseRedisURL(raw)
	if err != nil {
		r.fail(name, err.Error())
	}
	return rc
}

func (r *reader) auth(name string) []apiclient.AuthRule {
	var rules []apiclient.AuthRule
	// Errors name an entry by its position and show at most its host pattern: the rest is a
	// credential.
	for i, entry := range r.list(name) {
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) != 3 || parts[0] == "" {
			r.fail(name, fmt.Sprintf("entry %d must be host-regexp:user:password", i+1))
			return nil
		}
		re, err := regexp.Compile(`^(?:` + parts[0] + `)$`)
		if err != nil {
			r.fail(name, fmt.Sprintf("entry %d: bad host pattern %q: %v", i+1, parts[0], err))
			return nil
		}
		rules = append(rules, apiclient.AuthRule{Host: re, User: parts[1], Password: parts[2]})
	}
	return rules
}

// breaker reads the four circuit-breaker knobs, with prefix "" for the defaults or
// "<host>." for a host's overrides (unset overrides fall back to the defaults).
func (r *reader) breaker(prefix string) apiclient.BreakerSettings {
	get := func(knob string, lo, hi int) int {
		name := "ROUTEMASTER_CIRCUIT_BREAKER_" + knob
		s := strings.TrimSpace(r.env[prefix+name])
		if s == "" {
			s = r.str(name)
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			r.fail(prefix+name, fmt.Sprintf("%q must be a whole number from %d to %d", s, lo, hi))
			return lo
		}
		return n
	}
	return apiclient.BreakerSettings{
		SleepWindow:     time.Duration(get("SLEEP_WINDOW", 1, 86400)) * time.Second,
		TimeWindow:      time.Duration(get("TIME_WINDOW", 1, 86400)) * time.Second,
		VolumeThreshold: get("VOLUME_THRESHOLD", 1, 1<<20),
		ErrorThreshold:  get("ERROR_THRESHOLD", 1, 100),
	}
}

func yes(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "true", "on", "1":
		return true
	}
	return false
}
