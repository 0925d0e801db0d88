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
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/propagation"
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

	mu       sync.Mutex
	breakers map[string]*gobreaker.CircuitBreaker[*Response]

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
		SetRetryCount(0) // retries are ours: per attempt through the breaker, timeouts only
	if o.MaxBody > 0 {
		rc.SetResponseBodyLimit(int(o.MaxBody))
	}

	c := &Client{
		o:         o,
		rc:        rc,
		log:       o.Logger,
		sem:       make(chan struct{}, o.Concurrency),
		retryWait: RetryWait,
		breakers:  map[string]*gobreaker.CircuitBreaker[*Response]{},
		disc:      map[string]*discovery{},
	}
	m, err := newMetrics(o.Registerer)
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
	a := attempt{method: method, url: u.String(), shown: redact(u), host: host, body: payload, contentType: contentType, req: &req}

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
	req               *RequestOptions
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
	r.Header.Set("User-Agent", c.o.UserAgent)
	if a.req.Version != 0 {
		r.Header.Set("Accept", "application/json;v="+strconv.Itoa(a.req.Version))
	} else {
		r.Header.Set("Accept", "application/json")
	}
	if a.req.Locale != "" {
		r.Header.Set("Accept-Language", a.req.Locale)
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
	for k, v := range a.req.Header {
		r.Header[http.CanonicalHeaderKey(k)] = v
	}

	start := time.Now()
	rr, err := r.Execute(a.method, a.url)
	elapsed := time.Since(start)
	if err != nil {
		switch {
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

// authFor returns the first Options.Auth rule (ROUTEMASTER_CACHE_AUTH) whose pattern matches
// the whole host, or nil: unlike the gem, a host that matches no rule gets no Authorization
// header at all.
func (c *Client) authFor(host string) *AuthRule {
	for i := range c.o.Auth {
		if c.o.Auth[i].Host.MatchString(host) {
			return &c.o.Auth[i]
		}
	}
	return nil
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
