package reorder_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/event"
	"github.com/routemaster-drain/drain/reorder"
)

// A filter service runs each message's batch through Run with the message's stream sequence,
// hands res.Fresh on, and acks only afterwards: a redelivery (same sequence) gets the same
// fresh events again.
func ExampleFilter_Run() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	f := reorder.New(rdb, "rm", 90*24*time.Hour)
	batch, _ := event.Parse([]byte(`[
		{"topic":"orders","type":"update","url":"https://orders.example.com/1","t":10},
		{"topic":"orders","type":"update","url":"https://orders.example.com/1","t":12},
		{"topic":"orders","type":"noop","url":"https://orders.example.com/2","t":11}]`))
	res, err := f.Run(context.Background(), 42, batch, true)
	if err != nil {
		return // Redis unreachable: retry the message later
	}
	for _, e := range res.Fresh {
		fmt.Println(e.URL, e.T) // https://orders.example.com/1 12, then https://orders.example.com/2 11
	}
	fmt.Println(res.NewlyDirty) // [https://orders.example.com/1] on a blank Redis
}
