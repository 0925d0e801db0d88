package cache_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/cache"
)

func TestWarmRequestWire(t *testing.T) {
	r := cache.WarmRequest{URL: "https://api.example.com/w/1", Type: "update", T: 1700000000000, Index: 7}
	m, err := cache.WarmMsg("rm.warm", r)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != `{"url":"https://api.example.com/w/1","type":"update","t":1700000000000,"index":7}` {
		t.Fatalf("body %s", m.Data)
	}
	if ids, ok := m.Header[jetstream.MsgIDHeader]; !ok || len(ids) != 0 {
		t.Fatalf("msg id header %q (present %v), want present without a value (stream.NoMsgID)", ids, ok)
	}
	back, err := cache.ParseWarmRequest(m.Data)
	if err != nil || back != r {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestParseWarmRequestRejects(t *testing.T) {
	for name, body := range map[string]string{
		"not json":     `nope`,
		"relative url": `{"url":"/w/1","type":"update","t":1,"index":1}`,
		"ftp url":      `{"url":"ftp://x/1","type":"update","t":1,"index":1}`,
		"noop type":    `{"url":"https://x/1","type":"noop","t":1,"index":1}`,
		"negative t":   `{"url":"https://x/1","type":"create","t":-1,"index":1}`,
		"string index": `{"url":"https://x/1","type":"create","t":1,"index":"1"}`,
		"missing type": `{"url":"https://x/1","t":1,"index":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := cache.ParseWarmRequest([]byte(body)); !errors.Is(err, cache.ErrBadWarmRequest) {
				t.Fatalf("err %v, want ErrBadWarmRequest", err)
			}
		})
	}
}

// FuzzParseWarmRequest: ParseWarmRequest decodes every body as encoding/json does, whether its
// own decoder or encoding/json reads it.
func FuzzParseWarmRequest(f *testing.F) {
	for _, r := range []cache.WarmRequest{
		{URL: "https://api.example.com/w/1", Type: "update", T: 1700000000000, Index: 7},
		{URL: "https://x.example/search?a=1&b=<2>", Type: "refresh", T: 0, Index: math.MaxInt64},
		{URL: "http://h/é", Type: "delete", T: -1, Index: math.MinInt64},
	} {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, ` { "url" : "https://x/\/\u0041\n" , "t" : -0 } `, `{"URL":"https://x/1","TYPE":"create"}`,
		`{"url":"https://x/1","url":"https://y/1"}`, `{"t":01}`, `{"t":1.5}`, `{"t":1e3}`, `{"index":9223372036854775808}`,
		`{"url":null}`, `{"type":"create"`, `{"t":1}x`, `{"\u0075rl":"https://x/1"}`, `{"url":"a\u00e9"}`, `{"url":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want cache.WarmRequest
		wantErr := json.Unmarshal(body, &want)
		got, err := cache.ParseWarmRequest(body)
		if wantErr != nil {
			if !errors.Is(err, cache.ErrBadWarmRequest) {
				t.Fatalf("%q: encoding/json fails (%v), ParseWarmRequest gives %+v, %v", body, wantErr, got, err)
			}
			return
		}
		if got != want || (err == nil) != (want.Validate() == nil) {
			t.Fatalf("%q: got %+v (%v), encoding/json decodes %+v (valid: %v)", body, got, err, want, want.Validate())
		}
	})
}

func BenchmarkParseWarmRequest(b *testing.B) {
	m, err := cache.WarmMsg("rm.warm", cache.WarmRequest{URL: "https://api.example.com/orders/1234567?expand=items&x=1", Type: "update", T: 1700000000000, Index: 7})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ParseWarmRequest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cache.ParseWarmRequest(m.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r cache.WarmRequest
			if err := json.Unmarshal(m.Data, &r); err != nil || r.Validate() != nil {
				b.Fatal(err)
			}
		}
	})
}
