package cache_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/stream"
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
	if got, want := m.Header.Get(jetstream.MsgIDHeader), "warm-"+stream.MsgID("rm.warm", m.Data); got != want {
		t.Fatalf("msg id %q, want %q", got, want)
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
