package apiclient_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

// seen is one request as the origin received it.
type seen struct {
	Method string
	Host   string
	Path   string
	Query  string
	Header http.Header
	Body   string
}

// origin is a real HTTP server that records every request it receives.
type origin struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newOrigin(t *testing.T, h http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		o.mu.Lock()
		o.reqs = append(o.reqs, seen{r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
		o.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) requests() []seen {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]seen(nil), o.reqs...)
}

func (o *origin) count() int { return len(o.requests()) }

func (o *origin) last(t *testing.T) seen {
	t.Helper()
	r := o.requests()
	if len(r) == 0 {
		t.Fatal("the origin received no request")
	}
	return r[len(r)-1]
}

// routeAllTo returns a transport that connects to addr whatever host a URL names, so tests
// can use real host names (api.example.com) against a local origin.
func routeAllTo(addr string) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return tr
}

// newClient returns a client with o, logging nowhere unless o.Logger is set.
func newClient(t *testing.T, o apiclient.Options) *apiclient.Client {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := apiclient.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTLSOrigin(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(s.Close)
	return s
}
