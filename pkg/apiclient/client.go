package apiclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/routemaster-drain/drain/pkg/config"
)

// Defaults of the options.
const (
	// DefaultConcurrency is how many futures (GetAsync, Index items) run at once per Client,
	// the gem's thread-pool maximum.
	DefaultConcurrency = 20
	// DefaultDiscoverTTL is how long Discover remembers a root document.
	DefaultDiscoverTTL = 5 * time.Minute
	// Retries is how many times an idempotent request is retried after a timeout.
	Retries = 2
	// RetryWait is the sleep before the first retry; it doubles for each later one (100 ms, 200 ms).
	RetryWait = 100 * time.Millisecond
)

// Client fetches resources from origin APIs. It is safe for concurrent use; build one per
// process (breaker state and the Discover memo live in it).
type Client struct {
	cfg       config.Fetch
	rc        *resty.Client
	log       *slog.Logger
	userAgent string
	metrics   *metrics
	sem       chan struct{}
	retryWait time.Duration

	mu       sync.Mutex
	breakers map[string]*gobreaker.CircuitBreaker[*Response]

	discoverTTL time.Duration
	discMu      sync.Mutex
	disc        map[string]*discovery
}

// Option configures a Client (functional options; the origin settings come from config.Fetch).
type Option func(*options)

type options struct {
	registerer  prometheus.Registerer
	logger      *slog.Logger
	sourcePeer  string
	concurrency int
	discoverTTL time.Duration
	rootCAs     *x509.CertPool
	transport   *http.Transport
}

// WithRegisterer registers the client's metrics (see docs/apiclient.md) on r. Without it no
// metric is exported. A second Client on the same registry shares the same series.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithLogger sets the logger (default slog.Default()). Credentials are never logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithSourcePeer sets the User-Agent to the caller's name instead of
// ROUTEMASTER_API_CLIENT_USER_AGENT (the gem's source_peer).
func WithSourcePeer(peer string) Option { return func(o *options) { o.sourcePeer = peer } }

// WithConcurrency bounds how many futures run at once (default DefaultConcurrency). Futures
// beyond it wait for a slot; synchronous calls are not bounded.
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// WithDiscoverTTL sets how long Discover remembers a root document (default DefaultDiscoverTTL).
func WithDiscoverTTL(d time.Duration) Option { return func(o *options) { o.discoverTTL = d } }

// WithRootCAs verifies origin certificates against pool instead of the system roots (only
// used when ROUTEMASTER_CACHE_VERIFY_SSL=true).
func WithRootCAs(pool *x509.CertPool) Option { return func(o *options) { o.rootCAs = pool } }

// WithTransport uses t (for example with custom dialing or connection limits) instead of a clone
// of http.DefaultTransport. Its TLS verification setting is replaced by the configuration's.
func WithTransport(t *http.Transport) Option { return func(o *options) { o.transport = t } }

// New builds a Client from cfg (config.Load(...).Fetch). It logs a warning when TLS
// verification is off and fails only on a bad option or a metric registration conflict.
func New(cfg config.Fetch, opts ...Option) (*Client, error) {
	o := options{concurrency: DefaultConcurrency, discoverTTL: DefaultDiscoverTTL, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.concurrency < 1 {
		return nil, fmt.Errorf("apiclient: concurrency %d must be at least 1", o.concurrency)
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("apiclient: timeout %v must be positive", cfg.Timeout)
	}
	if cfg.CircuitEnabled {
		for host, b := range cfg.HostBreakers {
			if err := checkBreaker(b); err != nil {
				return nil, fmt.Errorf("apiclient: breaker of %s: %w", host, err)
			}
		}
		if err := checkBreaker(cfg.Breaker); err != nil {
			return nil, fmt.Errorf("apiclient: breaker: %w", err)
		}
	}
	for _, h := range cfg.AllowHosts {
		if strings.TrimPrefix(h, "*.") == "" || strings.Contains(strings.TrimPrefix(h, "*."), "*") {
			return nil, fmt.Errorf("apiclient: allowed host %q must be a host name or *.domain", h)
		}
	}

	tr := o.transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
		// The warmer runs up to DRAIN_WARM_HOST_CONCURRENCY fetches per host: keep that
		// many connections alive instead of the standard library's 2.
		tr.MaxIdleConnsPerHost = 256
	}
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: !cfg.VerifyTLS, RootCAs: o.rootCAs} //nolint:gosec // the gem's ROUTEMASTER_CACHE_VERIFY_SSL default
	if !cfg.VerifyTLS {
		o.logger.Warn("apiclient: origin TLS certificates are NOT verified; set ROUTEMASTER_CACHE_VERIFY_SSL=true to verify them")
	}
	hc := &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// Redirects are never followed (as the gem): a 3xx comes back as ErrRedirect, and
		// credentials can never travel to the host a Location names.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rc := resty.NewWithClient(hc).
		SetDisableWarn(true).
		SetLogger(restyLogger{o.logger}).
		SetRetryCount(0) // retries are ours: per attempt through the breaker, timeouts only
	if cfg.MaxBody > 0 {
		rc.SetResponseBodyLimit(int(cfg.MaxBody))
	}

	c := &Client{
		cfg:         cfg,
		rc:          rc,
		log:         o.logger,
		userAgent:   cfg.UserAgent,
		sem:         make(chan struct{}, o.concurrency),
		retryWait:   RetryWait,
		breakers:    map[string]*gobreaker.CircuitBreaker[*Response]{},
		discoverTTL: o.discoverTTL,
		disc:        map[string]*discovery{},
	}
	if o.sourcePeer != "" {
		c.userAgent = o.sourcePeer
	}
	m, err := newMetrics(o.registerer)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	return c, nil
}

// Response is a 2xx answer of an origin, with its whole body (at most MaxBody bytes).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	URL    string // the URL requested
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("apiclient: body of %s is not JSON: %w", r.URL, err)
	}
	return nil
}

// RequestOption adjusts one request.
type RequestOption func(*request)

type request struct {
	version int
	locale  string
	header  http.Header
	query   url.Values
}

// WithVersion asks for version v of the representation: `Accept: application/json;v=<v>`.
// Zero (the default) sends `Accept: application/json`.
func WithVersion(v int) RequestOption { return func(r *request) { r.version = v } }

// WithLocale sends `Accept-Language: <locale>`; empty sends none.
func WithLocale(locale string) RequestOption { return func(r *request) { r.locale = locale } }

// WithHeader sets a request header. Caller headers win over the client's own (User-Agent,
// Accept, Authorization), as in the gem.
func WithHeader(name, value string) RequestOption {
	return func(r *request) {
		if r.header == nil {
			r.header = http.Header{}
		}
		r.header.Set(name, value)
	}
}

// WithQuery adds query parameters to the URL (values replace those of the same name).
func WithQuery(q url.Values) RequestOption {
	return func(r *request) {
		if r.query == nil {
			r.query = url.Values{}
		}
		for k, v := range q {
			r.query[k] = v
		}
	}
}

// Get fetches url. A non-2xx status is a *StatusError; timeouts are retried twice.
func (c *Client) Get(ctx context.Context, url string, opts ...RequestOption) (*Response, error) {
	return c.Do(ctx, http.MethodGet, url, nil, opts...)
}

// Post sends body (JSON-encoded unless it is []byte or string) to url. It is never retried.
func (c *Client) Post(ctx context.Context, url string, body any, opts ...RequestOption) (*Response, error) {
	return c.Do(ctx, http.MethodPost, url, body, opts...)
}

// Put sends body to url; it is idempotent, so timeouts are retried.
func (c *Client) Put(ctx context.Context, url string, body any, opts ...RequestOption) (*Response, error) {
	return c.Do(ctx, http.MethodPut, url, body, opts...)
}

// Patch sends body to url. It is never retried.
func (c *Client) Patch(ctx context.Context, url string, body any, opts ...RequestOption) (*Response, error) {
	return c.Do(ctx, http.MethodPatch, url, body, opts...)
}

// Delete deletes url; it is idempotent, so timeouts are retried. Unlike the gem it runs
// through the circuit breaker and maps statuses like every other method.
func (c *Client) Delete(ctx context.Context, url string, opts ...RequestOption) (*Response, error) {
	return c.Do(ctx, http.MethodDelete, url, nil, opts...)
}

// Do sends one request with any method. body may be nil, []byte or string (sent as is), or
// any value to encode as JSON with `Content-Type: application/json`.
func (c *Client) Do(ctx context.Context, method, rawURL string, body any, opts ...RequestOption) (*Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("apiclient: %s %q: %w: must be an absolute http(s) URL", method, rawURL, ErrBadURL)
	}
	host := strings.ToLower(u.Hostname())
	if !c.allowed(host) {
		c.metrics.reject(host, "host_not_allowed")
		return nil, fmt.Errorf("apiclient: %s %s: %w: %s", method, redact(u), ErrHostNotAllowed, host)
	}
	var ro request
	for _, opt := range opts {
		opt(&ro)
	}
	if len(ro.query) > 0 {
		q := u.Query()
		for k, v := range ro.query {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	}
	payload, contentType, err := encodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %s %s: encode body: %w", method, redact(u), err)
	}
	a := attempt{method: method, url: u.String(), shown: redact(u), host: host, body: payload, contentType: contentType, req: &ro}

	retries := 0
	if idempotent(method) {
		retries = Retries
	}
	for i := 0; ; i++ {
		resp, err := c.try(ctx, &a)
		if err == nil || i >= retries || !errors.Is(err, ErrTimeout) || ctx.Err() != nil {
			return resp, err
		}
		t := time.NewTimer(c.retryWait << i)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

type attempt struct {
	method, url, host string
	shown             string // url without a password, for errors
	body              []byte
	contentType       string
	req               *request
}

// try sends one attempt, through the host's breaker when circuits are enabled.
func (c *Client) try(ctx context.Context, a *attempt) (*Response, error) {
	cb := c.breaker(a.host)
	if cb == nil {
		return c.send(ctx, a)
	}
	resp, err := cb.Execute(func() (*Response, error) { return c.send(ctx, a) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		c.metrics.reject(a.host, "circuit_open")
		return nil, fmt.Errorf("apiclient: %s %s: %w (%s): %w", a.method, a.shown, ErrCircuitOpen, a.host, err)
	}
	return resp, err
}

func (c *Client) send(ctx context.Context, a *attempt) (*Response, error) {
	r := c.rc.R().SetContext(ctx)
	r.Header.Set("User-Agent", c.userAgent)
	if a.req.version != 0 {
		r.Header.Set("Accept", "application/json;v="+strconv.Itoa(a.req.version))
	} else {
		r.Header.Set("Accept", "application/json")
	}
	if a.req.locale != "" {
		r.Header.Set("Accept-Language", a.req.locale)
	}
	if rule := c.authFor(a.host); rule != nil {
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(rule.User+":"+rule.Password)))
	}
	if a.body != nil {
		if a.contentType != "" {
			r.Header.Set("Content-Type", a.contentType)
		}
		r.SetBody(a.body)
	}
	for k, v := range a.req.header {
		r.Header[k] = v
	}

	start := time.Now()
	rr, err := r.Execute(a.method, a.url)
	elapsed := time.Since(start)
	if err != nil {
		switch {
		case errors.Is(err, resty.ErrResponseBodyTooLarge):
			c.metrics.observe(a.host, a.method, "too_large", elapsed)
			return nil, fmt.Errorf("apiclient: %s %s: %w (over %d bytes)", a.method, a.shown, ErrTooLarge, c.cfg.MaxBody)
		case ctx.Err() != nil:
			// The caller gave up: not the origin's fault, so the breaker does not count it.
			c.metrics.observe(a.host, a.method, "canceled", elapsed)
			return nil, callerGaveUp{fmt.Errorf("apiclient: %s %s: %w", a.method, a.shown, ctx.Err())}
		case isTimeout(err):
			c.metrics.observe(a.host, a.method, "timeout", elapsed)
			return nil, fmt.Errorf("apiclient: %s %s: %w after %v: %w", a.method, a.shown, ErrTimeout, c.cfg.Timeout, err)
		default:
			c.metrics.observe(a.host, a.method, "error", elapsed)
			return nil, fmt.Errorf("apiclient: %s %s: %w: %w", a.method, a.shown, ErrConnection, err)
		}
	}
	c.metrics.observe(a.host, a.method, classOf(rr.StatusCode()), elapsed)
	resp := &Response{Status: rr.StatusCode(), Header: rr.Header(), Body: rr.Body(), URL: a.url}
	if resp.Body == nil {
		resp.Body = []byte{}
	}
	if resp.Status < 200 || resp.Status > 299 {
		return nil, newStatusError(a.method, a.shown, resp)
	}
	return resp, nil
}

// callerGaveUp marks an error caused by the caller's context, which the breaker ignores.
type callerGaveUp struct{ error }

func (e callerGaveUp) Unwrap() error { return e.error }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

func encodeBody(body any) ([]byte, string, error) {
	switch b := body.(type) {
	case nil:
		return nil, "", nil
	case []byte:
		return b, "", nil
	case string:
		return []byte(b), "", nil
	case json.RawMessage:
		return b, "application/json", nil
	}
	p, err := json.Marshal(body)
	return p, "application/json", err
}

// authFor returns the first ROUTEMASTER_CACHE_AUTH rule whose pattern matches the whole host,
// or nil: unlike the gem, a host that matches no rule gets no Authorization header at all.
func (c *Client) authFor(host string) *config.AuthRule {
	for i := range c.cfg.Auth {
		if c.cfg.Auth[i].Host.MatchString(host) {
			return &c.cfg.Auth[i]
		}
	}
	return nil
}

// allowed applies DRAIN_WARM_ALLOW_HOSTS: empty allows every host; "example.com" allows
// exactly that host; "*.example.com" allows any host below example.com (not example.com).
func (c *Client) allowed(host string) bool {
	if len(c.cfg.AllowHosts) == 0 {
		return true
	}
	for _, h := range c.cfg.AllowHosts {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}

func redact(u *url.URL) string { return u.Redacted() }

func classOf(status int) string {
	if status >= 100 && status < 600 {
		return strconv.Itoa(status/100) + "xx"
	}
	return "other"
}

// restyLogger sends resty's own messages to slog at debug level.
type restyLogger struct{ l *slog.Logger }

func (r restyLogger) Errorf(format string, v ...any) {
	r.l.Debug("resty: " + fmt.Sprintf(format, v...))
}
func (r restyLogger) Warnf(format string, v ...any) { r.l.Debug("resty: " + fmt.Sprintf(format, v...)) }
func (r restyLogger) Debugf(format string, v ...any) {
	r.l.Debug("resty: " + fmt.Sprintf(format, v...))
}
