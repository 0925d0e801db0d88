package cache_test

import (
	"fmt"

	"github.com/routemaster-drain/drain/pkg/cache"
)

// The Redis key and field names an app in another language reads.
func ExampleKey() {
	v := cache.Variant{Version: "2", Locale: "fr"}
	fmt.Println(cache.Key("rm", "https://api.example.com/orders/1"))
	fmt.Println(v.Prefix()+"body", cache.FieldCurrentIndex)
	fmt.Println(v.Accept())
	// Output:
	// rm:cache:{https://api.example.com/orders/1}
	// v:2,l:fr,body current_index
	// application/json;v=2
}

// What the filter publishes on <prefix>.warm after bumping a URL's invalidation index.
func ExampleWarmMsg() {
	m, err := cache.WarmMsg("routemaster.warm", cache.WarmRequest{
		URL: "https://api.example.com/orders/1", Type: cache.WarmUpdate, T: 1700000000000, Index: 3,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Subject)
	fmt.Println(string(m.Data))
	// Output:
	// routemaster.warm
	// {"url":"https://api.example.com/orders/1","type":"update","t":1700000000000,"index":3}
}
