package chaos

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestOriginServesLatestPublishedVersion(t *testing.T) {
	p := &Plan{Base: "", Changes: []Change{
		{URL: "/widgets/1", Version: 1},
		{URL: "/widgets/1", Version: 2},
		{URL: "/widgets/1", Noop: true},
		{URL: "/widgets/1", Deleted: true},
		{URL: "/widgets/1", Version: 3},
	}}
	o := NewOrigin(p, 0)
	srv := httptest.NewServer(o)
	defer srv.Close()
	p.Base = srv.URL
	for i := range p.Changes {
		p.Changes[i].URL = srv.URL + p.Changes[i].URL
	}
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + "/widgets/1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	want := func(gen, status int, body string) {
		t.Helper()
		o.Advance(gen)
		s, b := get()
		if s != status || (body != "" && b != body) {
			t.Fatalf("after change %d: %d %s, want %d %s", gen, s, b, status, body)
		}
	}
	if s, _ := get(); s != http.StatusNotFound {
		t.Fatalf("before any change: %d, want 404", s)
	}
	url := srv.URL + "/widgets/1"
	want(0, 200, string(Representation(url, 1)))
	want(2, 200, string(Representation(url, 2))) // the noop changes nothing
	want(3, 404, "")
	want(4, 200, string(Representation(url, 3)))
	want(1, 200, string(Representation(url, 3))) // Advance never goes back
}
