package containers_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/containers"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Where a Docker engine answers, the containers are what the library connects to: the drain's
// streams are declared on the NATS container and the Redis URL reaches the Redis container.
func TestContainers(t *testing.T) {
	natsURL := containers.StartNATS(t)
	redisURL := containers.StartRedis(t, "ct")
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := stream.Declare(ctx, js, stream.StreamOptions{Prefix: "ct"}); err != nil {
		t.Fatal(err)
	}
	r, err := config.ParseRedisURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := r.NewClient()
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil || r.Namespace != "ct" {
		t.Fatalf("redis container: %v (namespace %q)", err, r.Namespace)
	}
}
