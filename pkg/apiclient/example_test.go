package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Get sends the gem's headers: a User-Agent, Accept with the version, Accept-Language.
func ExampleClient_Get() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"accept":%q,"language":%q}`, r.Header.Get("Accept"), r.Header.Get("Accept-Language"))
	}))
	defer origin.Close()

	// The zero Options are the defaults; a service takes config.Load(...).Fetch instead.
	c, err := apiclient.New(apiclient.Options{Logger: quiet})
	if err != nil {
		panic(err)
	}
	resp, err := c.Get(context.Background(), origin.URL+"/widgets/1",
		apiclient.RequestOptions{Version: 2, Locale: "fr"})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Status, string(resp.Body))
	// Output: 200 {"accept":"application/json;v=2","language":"fr"}
}

// Every non-2xx status is a *StatusError; errors.Is tells its kind and group.
func ExampleStatusError() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
		fmt.Fprint(w, `{"errors":{"id":"deleted"}}`)
	}))
	defer origin.Close()
	c, _ := apiclient.New(apiclient.Options{Logger: quiet})

	_, err := c.Get(context.Background(), origin.URL+"/widgets/1")
	var se *apiclient.StatusError
	if errors.As(err, &se) {
		fmt.Println(se.Status, se.Method, se.Body)
	}
	fmt.Println(errors.Is(err, apiclient.ErrGone), errors.Is(err, apiclient.ErrClientError), apiclient.Retryable(err))
	// Output:
	// 410 GET {"errors":{"id":"deleted"}}
	// true true false
}

// Options.Auth (ROUTEMASTER_CACHE_AUTH) gives Basic auth to the hosts whose whole name
// matches a pattern, over https only unless Options.AuthOverHTTP (DRAIN_WARM_AUTH_OVER_HTTP);
// other hosts get no Authorization header.
func ExampleNew_auth() {
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, ok := r.BasicAuth()
		if !ok {
			user = "(none)"
		}
		fmt.Fprintf(w, "%v %s", ok, user)
	})
	origin := httptest.NewTLSServer(whoami)
	defer origin.Close()
	plain := httptest.NewServer(whoami)
	defer plain.Close()
	rule := func(host string) []apiclient.AuthRule {
		return []apiclient.AuthRule{{Host: regexp.MustCompile(host), User: "warmer", Password: "s3cret"}}
	}
	c, _ := apiclient.New(apiclient.Options{Auth: rule(`^127\.0\.0\.1$`), Logger: quiet})
	resp, _ := c.Get(context.Background(), origin.URL)
	fmt.Println(string(resp.Body))
	resp, _ = c.Get(context.Background(), plain.URL) // not over plain http
	fmt.Println(string(resp.Body))

	c, _ = apiclient.New(apiclient.Options{Auth: rule(`^127\.0\.0$`), Logger: quiet}) // not the whole host
	resp, _ = c.Get(context.Background(), origin.URL)
	fmt.Println(string(resp.Body))

	c, _ = apiclient.New(apiclient.Options{Auth: rule(`^127\.0\.0\.1$`), AuthOverHTTP: true, Logger: quiet})
	resp, _ = c.Get(context.Background(), plain.URL)
	fmt.Println(string(resp.Body))
	// Output:
	// true warmer
	// false (none)
	// false (none)
	// true warmer
}

// With the breakers on (ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT), a host that keeps failing is
// cut off for the sleep window; its state is the drain_apiclient_breaker_state gauge.
func ExampleNew_circuitBreaker() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer origin.Close()
	reg := prometheus.NewRegistry()
	c, _ := apiclient.New(apiclient.Options{
		Breaker:    apiclient.BreakerOptions{Enabled: true, VolumeThreshold: 3, ErrorThreshold: 50},
		Logger:     quiet,
		Registerer: reg,
	})
	for range 4 {
		_, err := c.Get(context.Background(), origin.URL)
		fmt.Println(errors.Is(err, apiclient.ErrServerError), errors.Is(err, apiclient.ErrCircuitOpen))
	}
	// Output:
	// true false
	// true false
	// true false
	// false true
}

// GetAsync is the gem's fget: parallel reads, at most Options.Concurrency at a time.
func ExampleClient_GetAsync() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.TrimPrefix(r.URL.Path, "/"))
	}))
	defer origin.Close()
	c, _ := apiclient.New(apiclient.Options{Concurrency: 4, Logger: quiet})
	var futures []*apiclient.Future
	for _, id := range []string{"a", "b", "c"} {
		futures = append(futures, c.GetAsync(context.Background(), origin.URL+"/"+id))
	}
	for _, f := range futures {
		resp, err := f.Wait()
		fmt.Println(string(resp.Body), err)
	}
	// Output:
	// a <nil>
	// b <nil>
	// c <nil>
}

// Expand implements RFC 6570 templates as found in HAL links.
func ExampleExpand() {
	u, _ := apiclient.Expand("https://api.example.com/widgets/{id}{?page,per_page}", map[string]string{"id": "42", "page": "2"})
	fmt.Println(u)
	u, _ = apiclient.Expand("https://api.example.com/widgets{?page,per_page}", nil)
	fmt.Println(u)
	// Output:
	// https://api.example.com/widgets/42?page=2
	// https://api.example.com/widgets
}

// Discover reads an API root once per TTL; Link turns its links into Resources.
func ExampleClient_Discover() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			fmt.Fprint(w, `{"_links":{"widget":{"href":"/widgets/{id}","templated":true}}}`)
		default:
			fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
		}
	}))
	defer origin.Close()
	c, _ := apiclient.New(apiclient.Options{DiscoverTTL: time.Minute, Logger: quiet})
	root, err := c.Discover(context.Background(), origin.URL+"/")
	if err != nil {
		panic(err)
	}
	widget, _ := root.Link("widget")
	doc, _ := widget.Show(context.Background(), "7")
	fmt.Println(widget.URL(), string(doc.Body))
	// Output: /widgets/{id} {"path":"/widgets/7"}
}

// Index walks every page of a collection, following next links with the filters, and
// fetches each page's items in parallel.
func ExampleResource_Index() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/widgets" && r.URL.Query().Get("page") == "":
			fmt.Println("page 1 of color", r.URL.Query().Get("color"))
			fmt.Fprint(w, `{"_links":{"widgets":[{"href":"/widgets/1"},{"href":"/widgets/2"}],"next":{"href":"/widgets?page=2"}}}`)
		case r.URL.Path == "/widgets":
			fmt.Println("page 2 of color", r.URL.Query().Get("color"))
			fmt.Fprint(w, `{"_links":{"widgets":[{"href":"/widgets/3"}]}}`)
		default:
			fmt.Fprint(w, r.URL.Path)
		}
	}))
	defer origin.Close()
	c, _ := apiclient.New(apiclient.Options{Logger: quiet})
	widgets := c.Resource(origin.URL + "/widgets{?page}")
	for resp, err := range widgets.Index(context.Background(), url.Values{"color": {"red"}}) {
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(string(resp.Body))
	}
	// Output:
	// page 1 of color red
	// /widgets/1
	// /widgets/2
	// page 2 of color red
	// /widgets/3
}

// The seed's HATEOAS session: discover the service, create through one link, follow a link of
// the created resource (response.sessions.create(...); session.user.show(1)).
func ExampleResource_Create() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/":
			fmt.Fprint(w, `{"_links":{"sessions":{"href":"/sessions"}}}`)
		case r.Method == http.MethodPost && r.URL.Path == "/sessions":
			body, _ := io.ReadAll(r.Body)
			fmt.Println("created with", string(body))
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"_links":{"user":{"href":"/users/{id}","templated":true}}}`)
		default:
			fmt.Fprintf(w, `{"user":%q}`, strings.TrimPrefix(r.URL.Path, "/users/"))
		}
	}))
	defer origin.Close()
	c, _ := apiclient.New(apiclient.Options{Logger: quiet})
	ctx := context.Background()
	root, _ := c.Discover(ctx, origin.URL+"/")
	sessions, _ := root.Link("sessions")
	session, err := sessions.Create(ctx, map[string]string{"email": "test@test.com"})
	if err != nil {
		panic(err)
	}
	user, _ := session.Link("user")
	shown, _ := user.Show(ctx, "1")
	fmt.Println(session.Status, string(shown.Body))
	// Output:
	// created with {"email":"test@test.com"}
	// 201 {"user":"1"}
}
