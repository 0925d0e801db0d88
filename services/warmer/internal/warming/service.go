package warming

import (
	"context"

	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Summary is the one-line description -h prints.
const Summary = "warmer: fetches the resources named by warm requests (<prefix>.warm) into the Redis cache."

// Main runs the warmer service in l until ctx is cancelled (SIGTERM): it warns when
// DRAIN_WARM_ALLOW_HOSTS is empty, connects to NATS and the cache Redis, and once the streams are declared and both answer (/readyz names what is
// missing until then) consumes warm requests. On cancellation it stops pulling and waits up to
// DRAIN_SHUTDOWN_TIMEOUT for the messages it holds; if some are still unfinished then, it
// returns a *service.ShutdownTimeoutError (exit 1) and they are redelivered to another replica.
func Main(ctx context.Context, l *service.Lifecycle) error {
	cfg, log, reg := l.Config, l.Log, l.Registry
	conn := cfg.NATS
	conn.Name, conn.Log = "warmer", log
	nc, js, err := stream.Connect(conn)
	if err != nil {
		return err
	}
	defer service.CloseNATS(nc, cfg.ShutdownTimeout, log)
	names := cfg.Streams.Names()

	rdb := service.NewRedis(cfg.CacheRedis)
	defer rdb.Close()
	if len(cfg.Fetch.AllowHosts) == 0 {
		log.Warn("DRAIN_WARM_ALLOW_HOSTS is empty: the warmer fetches any host a warm request names, and whoever holds a bus token names them; " +
			"list the origin hosts (link-local and cloud metadata addresses are refused regardless)")
	}
	fetch := cfg.Fetch
	fetch.Logger, fetch.Registerer = log, reg
	client, err := apiclient.New(fetch)
	if err != nil {
		return err
	}
	co := cfg.CacheOptions()
	co.Fetcher, co.Registerer = cache.APIFetcher(client), reg
	c, err := cache.New(rdb, co)
	if err != nil {
		return err
	}
	w, err := New(Options{
		JS: js, Names: names, Cache: c, QueueName: cfg.Warm.QueueName, Consumer: cfg.Consumer,
		HostConcurrency: cfg.Warm.HostConcurrency, Coalesce: cfg.Warm.Coalesce, Manage: stream.Manage(cfg.Streams.Manage),
		Log: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	return l.Run(ctx, service.Spec{
		Needs:   append(service.NATSNeeds(nc, js, names, w.ConsumerConfig()), service.RedisNeed("cache_redis", rdb)),
		Prepare: func(ctx context.Context) error { return stream.DeclareUntil(ctx, js, cfg.Streams, log) },
		Work: func(ctx context.Context) error {
			log.Info("warmer running", "consumer", w.Durable(), "concurrency", cfg.Consumer.Concurrency,
				"host_concurrency", cfg.Warm.HostConcurrency, "coalesce", cfg.Warm.Coalesce,
				"cache_redis", cfg.CacheRedis.Redacted(), "circuit", cfg.Fetch.Breaker.Enabled)
			return w.Run(ctx)
		},
		Abandoned: "warm requests still in hand (unacked, so JetStream redelivers them)",
	})
}
