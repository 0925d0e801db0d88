package apiclient_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

// TestStatusRows covers every status row of the gem's error mapping plus its gaps (gem bug 9, docs/gem.md): each non-2xx status is a
// *StatusError of the documented kind and group, and 2xx is a Response.
func TestStatusRows(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/"), &code)
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":{"code":%d}}`, code)
	})
	c := newClient(t, apiclient.Options{})
	rows := []struct {
		status int
		kind   error
		group  error
	}{
		{301, apiclient.ErrRedirect, apiclient.ErrRedirect},
		{302, apiclient.ErrRedirect, apiclient.ErrRedirect},
		{304, apiclient.ErrRedirect, apiclient.ErrRedirect},
		{307, apiclient.ErrRedirect, apiclient.ErrRedirect},
		{400, apiclient.ErrInvalid, apiclient.ErrClientError},
		{401, apiclient.ErrUnauthorized, apiclient.ErrClientError},
		{402, apiclient.ErrClientError, apiclient.ErrClientError},
		{403, apiclient.ErrForbidden, apiclient.ErrClientError},
		{404, apiclient.ErrNotFound, apiclient.ErrClientError},
		{405, apiclient.ErrMethodNotAllowed, apiclient.ErrClientError},
		{406, apiclient.ErrIncompatibleVersion, apiclient.ErrClientError},
		{407, apiclient.ErrClientError, apiclient.ErrClientError},
		{408, apiclient.ErrClientError, apiclient.ErrClientError},
		{409, apiclient.ErrConflict, apiclient.ErrClientError},
		{410, apiclient.ErrGone, apiclient.ErrClientError},
		{411, apiclient.ErrClientError, apiclient.ErrClientError},
		{412, apiclient.ErrIncompatibleVersion, apiclient.ErrClientError},
		{413, apiclient.ErrInvalid, apiclient.ErrClientError},
		{414, apiclient.ErrClientError, apiclient.ErrClientError},
		{418, apiclient.ErrClientError, apiclient.ErrClientError},
		{422, apiclient.ErrInvalid, apiclient.ErrClientError},
		{429, apiclient.ErrThrottled, apiclient.ErrClientError},
		{451, apiclient.ErrClientError, apiclient.ErrClientError},
		{499, apiclient.ErrClientError, apiclient.ErrClientError},
		{500, apiclient.ErrServerError, apiclient.ErrServerError},
		{501, apiclient.ErrServerError, apiclient.ErrServerError},
		{502, apiclient.ErrBadGateway, apiclient.ErrServerError},
		{503, apiclient.ErrUnavailable, apiclient.ErrServerError},
		{504, apiclient.ErrServerError, apiclient.ErrServerError},
		{599, apiclient.ErrServerError, apiclient.ErrServerError},
	}
	for _, row := range rows {
		t.Run(fmt.Sprint(row.status), func(t *testing.T) {
			url := fmt.Sprintf("%s/%d", o.URL, row.status)
			resp, err := c.Get(context.Background(), url)
			if resp != nil {
				t.Fatalf("got a response %+v with the error", resp)
			}
			var se *apiclient.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *StatusError", err)
			}
			if se.Status != row.status || se.Method != "GET" || se.URL != url || se.Kind != row.kind {
				t.Errorf("StatusError = %+v", se)
			}
			if !errors.Is(err, row.kind) || !errors.Is(err, row.group) {
				t.Errorf("errors.Is(%v, %v/%v) = false", err, row.kind, row.group)
			}
			if row.status != 304 && !strings.Contains(se.Body, fmt.Sprintf(`"code":%d`, row.status)) {
				t.Errorf("body excerpt %q", se.Body)
			}
		})
	}
	for _, code := range []int{200, 201, 202, 204} {
		resp, err := c.Get(context.Background(), fmt.Sprintf("%s/%d", o.URL, code))
		if err != nil || resp.Status != code {
			t.Errorf("GET %d: %+v, %v", code, resp, err)
		}
	}
}

func TestErrorBodyNeverCrashes(t *testing.T) {
	big := strings.Repeat("é", apiclient.ExcerptLimit) // two bytes a rune: the limit cuts one
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		if r.URL.Path == "/big" {
			fmt.Fprint(w, big)
			return
		}
		fmt.Fprint(w, "<html>oops\xff</html>")
	})
	c := newClient(t, apiclient.Options{})
	_, err := c.Get(context.Background(), o.URL+"/html")
	var se *apiclient.StatusError
	if !errors.As(err, &se) {
		t.Fatal(err)
	}
	if se.Body != "<html>oops\uFFFD</html>" {
		t.Errorf("excerpt %q", se.Body)
	}
	var v map[string]any
	if se.JSON(&v) == nil {
		t.Error("JSON of an HTML body succeeded")
	}
	_, err = c.Get(context.Background(), o.URL+"/big")
	if !errors.As(err, &se) || len(se.Body) > apiclient.ExcerptLimit || strings.Contains(se.Body, "\uFFFD") {
		t.Errorf("excerpt of %d bytes: %q", len(se.Body), se.Body)
	}
}

func TestHeaders(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) })
	ctx := context.Background()

	c := newClient(t, apiclient.Options{UserAgent: "drain-test/1"})
	if _, err := c.Get(ctx, o.URL+"/a"); err != nil {
		t.Fatal(err)
	}
	h := o.last(t).Header
	if h.Get("User-Agent") != "drain-test/1" || h.Get("Accept") != "application/json" || h.Get("Accept-Language") != "" {
		t.Errorf("default headers %v", h)
	}
	if _, err := c.Get(ctx, o.URL+"/a", apiclient.RequestOptions{Version: 3, Locale: "fr-FR"}); err != nil {
		t.Fatal(err)
	}
	h = o.last(t).Header
	if h.Get("Accept") != "application/json;v=3" || h.Get("Accept-Language") != "fr-FR" {
		t.Errorf("versioned headers %v", h)
	}
	if _, err := c.Get(ctx, o.URL+"/a", apiclient.RequestOptions{Header: http.Header{"Accept": {"text/plain"}}}); err != nil {
		t.Fatal(err)
	}
	if h = o.last(t).Header; h.Get("Accept") != "text/plain" {
		t.Errorf("caller header lost: %v", h)
	}

	peer := newClient(t, apiclient.Options{UserAgent: "billing-service"}) // the gem's source_peer
	if _, err := peer.Get(ctx, o.URL+"/a"); err != nil {
		t.Fatal(err)
	}
	if ua := o.last(t).Header.Get("User-Agent"); ua != "billing-service" {
		t.Errorf("User-Agent with a source peer = %q", ua)
	}
	if _, err := peer.Post(ctx, o.URL+"/a", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if s := o.last(t); s.Method != "POST" || s.Body != `{"n":1}` || s.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST seen as %+v", s)
	}
}

func TestAuthPerHost(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, apiclient.Options{
		Auth: []apiclient.AuthRule{
			{Host: regexp.MustCompile(`^(?:example\.com)$`), User: "alice", Password: "s3cret"},
			{Host: regexp.MustCompile(`^(?:.*\.example\.com)$`), User: "bob", Password: "pw"},
			{Host: regexp.MustCompile(`^(?:example\.com)$`), User: "carol", Password: "never"},
		},
		AuthOverHTTP: true, // the origin is plain http
		Transport:    routeAllTo(o.Listener.Addr().String()),
	})
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	for host, want := range map[string]string{
		"example.com":            basic("alice", "s3cret"), // first match wins over carol
		"EXAMPLE.com":            basic("alice", "s3cret"), // host names are case-insensitive
		"www.example.com":        basic("bob", "pw"),
		"example.com.evil.net":   "", // the gem's unanchored regexp would send alice's password
		"exampleXcom":            "",
		"other.org":              "", // the gem sends "Basic " here
		"circuit.example.com:81": basic("bob", "pw"),
	} {
		if _, err := c.Get(context.Background(), "http://"+host+"/r"); err != nil {
			t.Fatal(err)
		}
		if got, ok := o.last(t).Header["Authorization"]; want == "" && ok || want != "" && (len(got) != 1 || got[0] != want) {
			t.Errorf("%s: Authorization %q, want %q", host, got, want)
		}
	}
}

// ROUTEMASTER_CACHE_AUTH credentials never travel over plain http unless
// Options.AuthOverHTTP says so; the client says once per rule that it held them back.
func TestAuthNotSentOverPlainHTTP(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {})
	rules := []apiclient.AuthRule{{Host: regexp.MustCompile(`^127\.0\.0\.1$`), User: "warmer", Password: "s3cret"}}
	var logs bytes.Buffer
	c := newClient(t, apiclient.Options{Auth: rules, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		if _, err := c.Get(context.Background(), o.URL+"/r"); err != nil {
			t.Fatal(err)
		}
		if got, ok := o.last(t).Header["Authorization"]; ok {
			t.Fatalf("credentials sent over http: %q", got)
		}
	}
	if n := strings.Count(logs.String(), "not sending ROUTEMASTER_CACHE_AUTH credentials over plain http"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the password was logged: %s", logs.String())
	}

	allowed := newClient(t, apiclient.Options{Auth: rules, AuthOverHTTP: true})
	if _, err := allowed.Get(context.Background(), o.URL+"/r"); err != nil {
		t.Fatal(err)
	}
	if user, pass, ok := (&http.Request{Header: o.last(t).Header}).BasicAuth(); !ok || user != "warmer" || pass != "s3cret" {
		t.Errorf("with AuthOverHTTP: Basic auth %q %q %v", user, pass, ok)
	}
}

func TestTimeoutRetries(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c := newClient(t, apiclient.Options{Timeout: 100 * time.Millisecond})
	ctx := context.Background()

	start := time.Now()
	_, err := c.Get(ctx, o.URL+"/slow")
	if !errors.Is(err, apiclient.ErrTimeout) || !apiclient.Retryable(err) {
		t.Fatalf("GET error %v", err)
	}
	if n := o.count(); n != 3 {
		t.Errorf("GET reached the origin %d times, want 3 (1 + 2 retries)", n)
	}
	// 3 timeouts of 100 ms plus the 100 ms and 200 ms pauses.
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("GET gave up after %v", d)
	}

	_, err = c.Post(ctx, o.URL+"/slow", "x")
	if !errors.Is(err, apiclient.ErrTimeout) {
		t.Fatalf("POST error %v", err)
	}
	if n := o.count(); n != 4 {
		t.Errorf("POST reached the origin %d times, want 1", n-3)
	}

	// A cancelled caller is not retried.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.Get(cctx, o.URL+"/slow")
	if !errors.Is(err, context.DeadlineExceeded) || o.count() != 5 {
		t.Errorf("cancelled GET: %v after %d requests", err, o.count()-4)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
		}
	})
	c := newClient(t, apiclient.Options{})
	_, err := c.Get(context.Background(), o.URL+"/old")
	var se *apiclient.StatusError
	if !errors.As(err, &se) || !errors.Is(err, apiclient.ErrRedirect) || se.Header.Get("Location") != "/new" {
		t.Fatalf("error %v", err)
	}
	if n := o.count(); n != 1 {
		t.Errorf("origin saw %d requests; the redirect was followed", n)
	}
}

// The body cap holds whether the origin announces the length or streams the body chunked;
// a gzip body the caller asked for is decoded; and reading bodies keeps the connection alive.
func TestBodyCap(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		body := bytes.Repeat([]byte("x"), 2048)
		switch r.URL.Path {
		case "/chunked":
			w.Write(body[:1000])
			w.(http.Flusher).Flush()
			w.Write(body[1000:])
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			gz.Write(body)
			gz.Close()
		default:
			w.Write(body)
		}
	})
	var conns atomic.Int64
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	c := newClient(t, apiclient.Options{MaxBody: 2048})
	small := newClient(t, apiclient.Options{MaxBody: 2047})
	gzipped := apiclient.RequestOptions{Header: http.Header{"Accept-Encoding": {"gzip"}}}
	for _, path := range []string{"/", "/chunked", "/gzip"} {
		if resp, err := c.Get(context.Background(), o.URL+path, gzipped); err != nil || string(resp.Body) != strings.Repeat("x", 2048) {
			t.Fatalf("%s at the cap: %v", path, err)
		}
		if _, err := small.Get(context.Background(), o.URL+path, gzipped); !errors.Is(err, apiclient.ErrTooLarge) {
			t.Fatalf("%s over the cap: %v", path, err)
		}
	}
	conns.Store(0)
	for range 20 {
		if _, err := c.Get(context.Background(), o.URL+"/chunked"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(context.Background(), o.URL); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n > 0 {
		t.Errorf("40 sequential requests opened %d new connections, want the one kept alive", n)
	}
}

func TestAllowHosts(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, apiclient.Options{AllowHosts: []string{"api.example.com", "*.internal.net"},
		Transport: routeAllTo(o.Listener.Addr().String())})
	for url, ok := range map[string]bool{
		"http://api.example.com/x":       true,
		"https://API.example.com:8443/x": true,
		"http://a.internal.net/x":        true,
		"http://a.b.internal.net/x":      true,
		"http://internal.net/x":          false,
		"http://example.com/x":           false,
		"http://api.example.com.evil/x":  false,
		"http://169.254.169.254/latest":  false,
		"http://evilinternal.net/x":      false,
	} {
		before := o.count()
		_, err := c.Get(context.Background(), url)
		if denied := errors.Is(err, apiclient.ErrHostNotAllowed); denied == ok {
			t.Errorf("%s: error %v", url, err)
		}
		if !ok && o.count() != before {
			t.Errorf("%s: a request was sent", url)
		}
	}
	if _, err := c.Get(context.Background(), "ftp://api.example.com/x"); !errors.Is(err, apiclient.ErrBadURL) {
		t.Errorf("ftp URL: %v", err)
	}
}

func TestTLSVerification(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {})
	o.Close()
	tlsOrigin := newTLSOrigin(t)

	var logs bytes.Buffer
	off, err := apiclient.New(apiclient.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "NOT verified") {
		t.Errorf("no start-up warning: %q", logs.String())
	}
	if _, err := off.Get(context.Background(), tlsOrigin.URL); err != nil {
		t.Errorf("verification off: %v", err)
	}
	on := newClient(t, apiclient.Options{VerifyTLS: true})
	if _, err := on.Get(context.Background(), tlsOrigin.URL); !errors.Is(err, apiclient.ErrConnection) {
		t.Errorf("verification on, unknown CA: %v", err)
	}
	pool := tlsOrigin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	trusted := newClient(t, apiclient.Options{VerifyTLS: true, RootCAs: pool})
	if _, err := trusted.Get(context.Background(), tlsOrigin.URL); err != nil {
		t.Errorf("verification on, trusted CA: %v", err)
	}
}

// An error names the URL as the caller gave it, but never a password it carries; query
// parameters added by RequestOptions are part of the URL requested and named.
func TestErrorsNameTheURLWithoutItsPassword(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	c := newClient(t, apiclient.Options{})
	plain := o.URL + "/plain"
	if _, err := c.Get(context.Background(), plain); err == nil || !strings.Contains(err.Error(), plain) {
		t.Errorf("error %v does not name %s", err, plain)
	}
	withPassword := strings.Replace(o.URL, "http://", "http://alice:s3cret@", 1) + "/private"
	_, err := c.Get(context.Background(), withPassword)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "alice:xxxxx@") {
		t.Errorf("error %v shows the password or no redacted URL", err)
	}
	_, err = c.Get(context.Background(), o.URL+"/q", apiclient.RequestOptions{Query: map[string][]string{"page": {"2"}}})
	if err == nil || !strings.Contains(err.Error(), "/q?page=2") {
		t.Errorf("error %v does not name the query sent", err)
	}
	if got := o.last(t); got.Query != "page=2" {
		t.Errorf("query sent %q", got.Query)
	}
}
