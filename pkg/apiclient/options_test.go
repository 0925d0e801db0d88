package apiclient_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

// TestZeroOptions: a client built from the zero Options sends the default User-Agent and
// caps bodies at DefaultMaxBody.
func TestZeroOptions(t *testing.T) {
	big := make([]byte, apiclient.DefaultMaxBody+1)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
		}
	})
	c := newClient(t, apiclient.Options{})
	if _, err := c.Get(context.Background(), o.URL); err != nil {
		t.Fatal(err)
	}
	if ua := o.last(t).Header.Get("User-Agent"); ua != apiclient.DefaultUserAgent {
		t.Errorf("User-Agent = %q, want %q", ua, apiclient.DefaultUserAgent)
	}
	if _, err := c.Get(context.Background(), o.URL+"/big"); !errors.Is(err, apiclient.ErrTooLarge) {
		t.Errorf("body of DefaultMaxBody+1 bytes: %v, want ErrTooLarge", err)
	}
	unlimited := newClient(t, apiclient.Options{MaxBody: -1})
	if _, err := unlimited.Get(context.Background(), o.URL+"/big"); err != nil {
		t.Errorf("MaxBody -1: %v", err)
	}
}

// TestOptionsValidate: New names the bad field.
func TestOptionsValidate(t *testing.T) {
	on := func(b apiclient.BreakerOptions) apiclient.BreakerOptions { b.Enabled = true; return b }
	for _, tc := range []struct {
		o    apiclient.Options
		want string
	}{
		{apiclient.Options{Timeout: -time.Second}, "Timeout"},
		{apiclient.Options{Concurrency: -1}, "Concurrency"},
		{apiclient.Options{DiscoverTTL: -time.Second}, "DiscoverTTL"},
		{apiclient.Options{Auth: []apiclient.AuthRule{{User: "u"}}}, "Auth[0]"},
		{apiclient.Options{AllowHosts: []string{"*.*.example.com"}}, "allowed host"},
		{apiclient.Options{AllowHosts: []string{"*."}}, "allowed host"},
		{apiclient.Options{Breaker: on(apiclient.BreakerOptions{ErrorThreshold: 101})}, "error threshold"},
		{apiclient.Options{Breaker: on(apiclient.BreakerOptions{SleepWindow: -time.Second})}, "sleep window"},
		{apiclient.Options{Breaker: on(apiclient.BreakerOptions{Hosts: map[string]apiclient.BreakerSettings{"a.test": {VolumeThreshold: -1}}})}, "breaker of a.test"},
	} {
		tc.o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if _, err := apiclient.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tc.o, err, tc.want)
		}
	}
	// Breaker settings are not checked while the breakers are off.
	if _, err := apiclient.New(apiclient.Options{Breaker: apiclient.BreakerOptions{ErrorThreshold: 101}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Errorf("bad breaker settings with the breakers off: %v", err)
	}
}

// TestBreakerFor: a host's override takes the defaults for its zero fields; host names
// compare case-insensitively; the zero BreakerOptions are the gem's settings.
func TestBreakerFor(t *testing.T) {
	var zero apiclient.BreakerOptions
	want := apiclient.BreakerSettings{SleepWindow: apiclient.DefaultSleepWindow, TimeWindow: apiclient.DefaultTimeWindow,
		VolumeThreshold: apiclient.DefaultVolumeThreshold, ErrorThreshold: apiclient.DefaultErrorThreshold}
	if got := zero.For("any.test"); got != want {
		t.Errorf("zero For = %+v, want %+v", got, want)
	}
	if want.SleepWindow != 60*time.Second || want.TimeWindow != 120*time.Second || want.VolumeThreshold != 50 || want.ErrorThreshold != 50 {
		t.Errorf("breaker defaults %+v are not the gem's 60 s, 120 s, 50, 50%%", want)
	}
	b := apiclient.BreakerOptions{VolumeThreshold: 10, Hosts: map[string]apiclient.BreakerSettings{"API.test": {ErrorThreshold: 90}}}
	got := b.For("api.test")
	if got.ErrorThreshold != 90 || got.VolumeThreshold != 10 || got.SleepWindow != apiclient.DefaultSleepWindow {
		t.Errorf("For(api.test) = %+v", got)
	}
	if got := b.For("other.test"); got.ErrorThreshold != apiclient.DefaultErrorThreshold || got.VolumeThreshold != 10 {
		t.Errorf("For(other.test) = %+v", got)
	}
}

// TestRequestOptionsMerge: several RequestOptions merge, the later winning.
func TestRequestOptionsMerge(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, apiclient.Options{Auth: []apiclient.AuthRule{{Host: regexp.MustCompile(`^127\.0\.0\.1$`), User: "u", Password: "p"}}})
	_, err := c.Get(context.Background(), o.URL+"/x?a=url&b=url",
		apiclient.RequestOptions{Version: 2, Locale: "fr", Header: http.Header{"x-one": {"1"}}, Query: map[string][]string{"a": {"first"}}},
		apiclient.RequestOptions{Locale: "de", Header: http.Header{"X-One": {"one"}, "Authorization": {"Bearer t"}}, Query: map[string][]string{"a": {"second"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := o.last(t)
	if r.Header.Get("Accept") != "application/json;v=2" || r.Header.Get("Accept-Language") != "de" || r.Header.Get("X-One") != "one" ||
		r.Header.Get("Authorization") != "Bearer t" || r.Query != "a=second&b=url" {
		t.Errorf("merged request: header %v, query %q", r.Header, r.Query)
	}
}
