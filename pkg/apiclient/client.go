package apiclient

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Retries of idempotent requests.
const (
	// Retries is how many times an idempotent request is retried after a timeout.
	Retries = 2
	// RetryWait is the sleep before the first retry; it doubles for each later one (100 ms, 200 ms).
	RetryWait = 100 * time.Millisecond
)

// Client fetches resources from origin APIs. It is safe for concurrent use; build one per
// process (breaker state and the Discover memo live in it).
type Client struct {
	o         Options // with defaults
	rc        *resty.Client
	log       *slog.Logger
	metrics   *metrics
	sem       chan struct{}
	retryWait time.Duration
	userAgent []string // the User-Agent header's value, shared by every request
	tracer    trace.Tracer

	breakers   *breakers     // nil when circuits are off
	authWarned []atomic.Bool // per Options.Auth rule: its plain-http warning was logged

	discMu sync.Mutex
	disc   map[string]*discovery
}

// New builds a Client from o (zero fields take the Default* values; pkg/config's
// Config.Fetch holds the environment's settings). It logs a warning when TLS verification is
// off and fails only on invalid options or a metric registration conflict.
func New(o Options) (*Client, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}

	tr := o.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
		// The warmer runs up to DRAIN_WARM_HOST_CONCURRENCY fetches per host: keep that
		// many connections alive instead of the standard library's 2.
		tr.MaxIdleConnsPerHost = 256
	}
	guardTransport(tr, o.Resolver, o.Transport == nil)
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: !o.VerifyTLS, RootCAs: o.RootCAs} //nolint:gosec // the gem's ROUTEMASTER_CACHE_VERIFY_SSL default
	if !o.VerifyTLS {
		o.Logger.Warn("apiclient: origin TLS certificates are NOT verified; set ROUTEMASTER_CACHE_VERIFY_SSL=true (Options.VerifyTLS) to verify them")
	}
	hc := &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		// Redirects are never followed (as the gem): a 3xx comes back as ErrRedirect, and
		// credentials can never travel to the host a Location names.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rc := resty.NewWithClient(hc).
		SetDisableWarn(true).
		SetLogger(restyLogger{o.Logger}).
		SetRetryCount(0).           // retries are ours: per attempt through the breaker, timeouts only
		SetDoNotParseResponse(true) // send reads the body itself (readBody), within MaxBody

	c := &Client{
		o:          o,
		rc:         rc,
		log:        o.Logger,
		sem:        make(chan struct{}, o.Concurrency),
		retryWait:  RetryWait,
		authWarned: make([]atomic.Bool, len(o.Auth)),
		userAgent:  []string{o.UserAgent},
		tracer:     o.TracerProvider.Tracer(tracerName),
		disc:       map[string]*discovery{},
	}
	m, err := newMetrics(o.Registerer, newHostLabels(o.MetricsMaxHosts, configuredHosts(o)))
	if err != nil {
		return nil, err
	}
	c.metrics = m
	if o.Breaker.Enabled {
		c.breakers = newBreakers(o.Breaker, m, o.Logger)
	}
	return c, nil
}

// configuredHosts are the host names the options name exactly: they always get a metric
// label of their own.
func configuredHosts(o Options) []string {
	var hosts []string
	for _, h := range o.AllowHosts {
		if !strings.HasPrefix(h, "*.") {
			hosts = append(hosts, h)
		}
	}
	for h := range o.Breaker.Hosts {
		hosts = append(hosts, h)
	}
	return hosts
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

// Get fetches url. A non-2xx status is a *StatusError; timeouts are retried twice.
func (c *Client) Get(ctx context.Context, url string, ro ...RequestOptions) (*Response, error) {
	return c.Do(ctx, http.MethodGet, url, nil, ro...)
}

// Post sends body (JSON-encoded unless it is []byte or string) to url. It is never retried.
func (c *Client) Post(ctx context.Context, url string, body any, ro ...RequestOptions) (*Response, error) {
	return c.Do(ctx, http.MethodPost, url, body, ro...)
}

// Put sends body to url; it is idempotent, so timeouts are retried.
func (c *Client) Put(ctx context.Context, url string, body any, ro ...RequestOptions) (*Response, error) {
	return c.Do(ctx, http.MethodPut, url, body, ro...)
}

// Patch sends body to url. It is never retried.
func (c *Client) Patch(ctx context.Context, url string, body any, ro ...RequestOptions) (*Response, error) {
	return c.Do(ctx, http.MethodPatch, url, body, ro...)
}

// Delete deletes url; it is idempotent, so timeouts are retried. Unlike the gem it runs
// through the circuit breaker and maps statuses like every other method.
func (c *Client) Delete(ctx context.Context, url string, ro ...RequestOptions) (*Response, error) {
	return c.Do(ctx, http.MethodDelete, url, nil, ro...)
}

// Do sends one request with any method. body may be nil, []byte or string (sent as is), or
// any value to encode as JSON with `Content-Type: application/json`. ro adjust the request
// (merged as RequestOptions documents).
func (c *Client) Do(ctx context.Context, method, rawURL string, body any, ro ...RequestOptions) (*Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("apiclient: %s %q: %w: must be an absolute http(s) URL", method, rawURL, ErrBadURL)
	}
	host := strings.ToLower(u.Hostname())
	if !c.allowed(host) {
		c.metrics.reject(host, "host_not_allowed")
		return nil, fmt.Errorf("apiclient: %s %s: %w: %s", method, redact(u), ErrHostNotAllowed, host)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		// Checked here too, not only at dial time: through a proxy (HTTP_PROXY) the client
		// connects only to the proxy, which would connect to the literal address itself.
		if err := checkAddress(host); err != nil {
			c.metrics.reject(host, "address_not_allowed")
			return nil, fmt.Errorf("apiclient: %s %s: %w: %w", method, redact(u), ErrAddressNotAllowed, err)
		}
	}
	req := mergeRequest(ro)
	if len(req.Query) > 0 {
		q := u.Query()
		for k, v := range req.Query {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	}
	payload, contentType, err := encodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %s %s: encode body: %w", method, redact(u), err)
	}
	a := attempt{method: method, url: rawURL, shown: rawURL, host: host, https: u.Scheme == "https", body: payload, contentType: contentType, req: &req}
	if len(req.Query) > 0 {
		a.url = u.String()
	}
	if _, secret := u.User.Password(); secret || len(req.Query) > 0 {
		a.shown = redact(u) // built only when it differs from what the caller gave
	}

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
	https             bool
	body              []byte
	contentType       string
	req               *RequestOptions
}

// try sends one attempt, through the host's breaker when circuits are enabled.
func (c *Client) try(ctx context.Context, a *attempt) (*Response, error) {
	if c.breakers == nil {
		return c.send(ctx, a)
	}
	resp, err := c.breakers.get(a.host).Execute(func() (*Response, error) { return c.send(ctx, a) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		c.metrics.reject(a.host, "circuit_open")
		return nil, fmt.Errorf("apiclient: %s %s: %w (%s): %w", a.method, a.shown, ErrCircuitOpen, a.host, err)
	}
	return resp, err
}

// send sends one attempt in its own client span.
func (c *Client) send(ctx context.Context, a *attempt) (*Response, error) {
	ctx, span := c.startAttempt(ctx, a)
	resp, err := c.sendAttempt(ctx, a)
	endAttempt(span, resp, err)
	return resp, err
}

func (c *Client) sendAttempt(ctx context.Context, a *attempt) (*Response, error) {
	r := c.rc.R().SetContext(ctx)
	c.o.Propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
	// The constant values are shared, not allocated per request: resty copies the header into
	// the http.Request it sends.
	r.Header["User-Agent"] = c.userAgent
	if a.req.Version != 0 {
		r.Header["Accept"] = []string{"application/json;v=" + strconv.Itoa(a.req.Version)}
	} else {
		r.Header["Accept"] = acceptJSON
	}
	if a.req.Locale != "" {
		r.Header["Accept-Language"] = []string{a.req.Locale}
	}
	if i := c.authFor(a.host); i >= 0 {
		rule := &c.o.Auth[i]
		if a.https || c.o.AuthOverHTTP {
			r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(rule.User+":"+rule.Password)))
		} else if !c.authWarned[i].Swap(true) {
			c.log.Warn("apiclient: not sending ROUTEMASTER_CACHE_AUTH credentials over plain http; use https, or set DRAIN_WARM_AUTH_OVER_HTTP=true (Options.AuthOverHTTP) to send them anyway",
				"host", a.host, "rule", i+1)
		}
	}
	if a.body != nil {
		if a.contentType != "" {
			r.Header.Set("Content-Type", a.contentType)
		}
		r.SetBody(a.body)
	}
	for k, v := range a.req.Header {
		r.Header[http.CanonicalHeaderKey(k)] = v
	}

	start := time.Now()
	rr, err := r.Execute(a.method, a.url)
	var body []byte
	if err == nil {
		body, err = readBody(rr.RawResponse, c.o.MaxBody)
	}
	elapsed := time.Since(start)
	if err != nil {
		var ae *addressError
		switch {
		case errors.As(err, &ae):
			c.metrics.reject(a.host, "address_not_allowed")
			return nil, fmt.Errorf("apiclient: %s %s: %w: %w", a.method, a.shown, ErrAddressNotAllowed, ae)
		case errors.Is(err, resty.ErrResponseBodyTooLarge):
			c.metrics.observe(a.host, a.method, "too_large", elapsed)
			return nil, fmt.Errorf("apiclient: %s %s: %w (over %d bytes)", a.method, a.shown, ErrTooLarge, c.o.MaxBody)
		case ctx.Err() != nil:
			// The caller gave up: not the origin's fault, so the breaker does not count it.
			c.metrics.observe(a.host, a.method, "canceled", elapsed)
			return nil, callerGaveUp{fmt.Errorf("apiclient: %s %s: %w", a.method, a.shown, ctx.Err())}
		case isTimeout(err):
			c.metrics.observe(a.host, a.method, "timeout", elapsed)
			return nil, fmt.Errorf("apiclient: %s %s: %w after %v: %w", a.method, a.shown, ErrTimeout, c.o.Timeout, err)
		default:
			c.metrics.observe(a.host, a.method, "error", elapsed)
			return nil, fmt.Errorf("apiclient: %s %s: %w: %w", a.method, a.shown, ErrConnection, err)
		}
	}
	c.metrics.observe(a.host, a.method, classOf(rr.StatusCode()), elapsed)
	resp := &Response{Status: rr.StatusCode(), Header: rr.Header(), Body: body, URL: a.url}
	if resp.Status < 200 || resp.Status > 299 {
		return nil, newStatusError(a.method, a.shown, resp)
	}
	return resp, nil
}

// acceptJSON is the Accept header's value without a version, shared by every request.
var acceptJSON = []string{"application/json"}

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

// authFor returns the index of the first Options.Auth rule (ROUTEMASTER_CACHE_AUTH) whose
// pattern matches the whole host, or -1: unlike the gem, a host that matches no rule gets no
// Authorization header at all.
func (c *Client) authFor(host string) int {
	for i := range c.o.Auth {
		if c.o.Auth[i].Host.MatchString(host) {
			return i
		}
	}
	return -1
}

// allowed applies Options.AllowHosts (DRAIN_WARM_ALLOW_HOSTS): empty allows every host;
// "example.com" allows exactly that host; "*.example.com" allows any host below example.com
// (not example.com).
func (c *Client) allowed(host string) bool {
	if len(c.o.AllowHosts) == 0 {
		return true
	}
	for _, h := range c.o.AllowHosts {
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
