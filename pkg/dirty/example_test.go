package dirty_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

// exampleRedis starts a private redis-server for an example and returns a client of it and
// the function that stops both.
func exampleRedis() (*redis.Client, func()) {
	s := draintest.NewScope()
	srv := draintest.StartRedis(s)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	return c, func() { _ = c.Close(); s.Close() }
}

// Sweep hands out the dirty URLs; a URL leaves the map only when the function returns true
// (the gem's $map.sweep { |url| ...; true }), and a limit bounds one sweep ($map.sweep(123)).
func ExampleMap_Sweep() {
	rdb, stop := exampleRedis()
	defer stop()
	ctx := context.Background()
	m, _ := dirty.New(rdb, dirty.Options{})
	for _, u := range []string{"https://api.example.com/orders/1", "https://api.example.com/orders/2", "https://api.example.com/orders/3"} {
		_, _ = m.Mark(ctx, u) // the filter marks URLs; an app may too
	}
	var swept []string
	_ = m.Sweep(ctx, 2, func(url string) (bool, error) {
		swept = append(swept, url)
		return true, nil // processed: remove it from the map
	})
	left, _ := m.Count(ctx)
	fmt.Println(len(swept), "swept,", left, "still dirty")
	// Output: 2 swept, 1 still dirty
}

// Count tells how many URLs wait to be swept ($map.count); a URL marked twice before a sweep
// counts once.
func ExampleMap_Count() {
	rdb, stop := exampleRedis()
	defer stop()
	ctx := context.Background()
	m, _ := dirty.New(rdb, dirty.Options{})
	first, _ := m.Mark(ctx, "https://api.example.com/widgets/9")
	again, _ := m.Mark(ctx, "https://api.example.com/widgets/9")
	n, _ := m.Count(ctx)
	fmt.Println(first, again, n)
	// Output: true false 1
}

// SweepOne cleans one URL, for example from the OnDirty callback: a function that returns
// false (or fails) leaves the URL dirty for the next sweep.
func ExampleMap_SweepOne() {
	rdb, stop := exampleRedis()
	defer stop()
	ctx := context.Background()
	m, _ := dirty.New(rdb, dirty.Options{})
	_, _ = m.Mark(ctx, "https://api.example.com/users/42")
	notYet, _ := m.SweepOne(ctx, "https://api.example.com/users/42", func(string) (bool, error) { return false, nil })
	done, _ := m.SweepOne(ctx, "https://api.example.com/users/42", func(string) (bool, error) { return true, nil })
	n, _ := m.Count(ctx)
	fmt.Println(notYet, done, n)
	// Output: false true 0
}

// OnDirty is the gem's :dirty_entity event: it is called once per URL that becomes dirty, not
// again while the URL stays dirty.
func ExampleOptions_onDirty() {
	rdb, stop := exampleRedis()
	defer stop()
	ctx := context.Background()
	var dirtied []string
	m, _ := dirty.New(rdb, dirty.Options{OnDirty: func(url string) { dirtied = append(dirtied, url) }})
	for _, u := range []string{"https://a.example.com/1", "https://a.example.com/2", "https://a.example.com/1"} {
		_, _ = m.Mark(ctx, u)
	}
	slices.Sort(dirtied)
	fmt.Println(dirtied)
	// Output: [https://a.example.com/1 https://a.example.com/2]
}
