package cache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/cache"
)

// TestOptions: the zero Options take the defaults; New needs a client and refuses bad options.
func TestOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled: New does not connect
	defer rdb.Close()
	c, err := cache.New(rdb, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace() != cache.DefaultNamespace || cache.DefaultNamespace != "rm" {
		t.Errorf("namespace of the zero Options = %q, want the gem's rm", c.Namespace())
	}
	if cache.DefaultExpiry != 90*24*time.Hour || cache.DefaultMaxBody != 4<<20 {
		t.Errorf("DefaultExpiry %v, DefaultMaxBody %d", cache.DefaultExpiry, cache.DefaultMaxBody)
	}
	if _, err := cache.New(nil, cache.Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	for _, tc := range []struct {
		o    cache.Options
		want string
	}{
		{cache.Options{Namespace: "a{b}"}, "braces"},
		{cache.Options{Expiry: -time.Second}, "Expiry"},
		{cache.Options{Expiry: time.Microsecond}, "Expiry"},
		{cache.Options{Parallel: -1}, "Parallel"},
	} {
		if _, err := cache.New(rdb, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tc.o, err, tc.want)
		}
	}
}
