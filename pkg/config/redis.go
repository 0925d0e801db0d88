package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/replication"
)

// DefaultNamespace is the key namespace when a Redis URL names none: the libraries' own
// default (the gem's "rm", shared by cache, dirty and reorder).
const DefaultNamespace = dirty.DefaultNamespace

// Redis is a parsed Redis setting: one URL redis[s]://[user:pass@]host:port[/db[/namespace]][?options]
// for a single server, a comma-separated list of such URLs naming the seed nodes of a Redis
// Cluster, or URLs with a master_name option naming Redis Sentinels. The options are go-redis's
// URL query options (pool_size, dial_timeout, read_timeout, write_timeout, max_retries, ...),
// honoured as go-redis parses them once the namespace segment is taken off.
type Redis struct {
	// URL is the setting as configured, password included: never log it (use Redacted).
	URL string
	// Options are the client options of the first URL, query options included; for a single
	// server, the whole setting.
	Options *redis.Options
	// Addrs are the host:port of every URL: one for a single server, several for Redis Cluster
	// (or the Sentinels, with Failover).
	Addrs []string
	// Failover is set when the URL names Redis Sentinels (the master_name option): clients then
	// follow the master the Sentinels elect.
	Failover *redis.FailoverOptions
	// Namespace prefixes every key (the gem's namespace; DefaultNamespace when none is given).
	Namespace string
	// Wait is how many replicas must confirm each write (DRAIN_REDIS_WAIT_REPLICAS and
	// DRAIN_REDIS_WAIT_TIMEOUT); NewClient installs it (replication.Wait).
	Wait replication.Options
	// poolSizeSet records a pool_size option, which the client floor does not override.
	poolSizeSet bool
}

// MinPoolSize is the connection pool a drain Redis client gets at least when the URL sets no
// pool_size: the services run DRAIN_CONCURRENCY (32 by default) operations at once.
const MinPoolSize = 32

// Cluster reports whether the setting names several Redis Cluster seed nodes.
func (r Redis) Cluster() bool { return r.Failover == nil && len(r.Addrs) > 1 }

// ClusterReloadInterval is how often a Redis Cluster client built by NewClient reloads its
// slot map while it has traffic (go-redis's default is 60 s); besides, it reloads as soon as
// a node stops answering (replication.ReloadOnError).
const ClusterReloadInterval = 5 * time.Second

// NewClient returns a client for the setting: a Sentinel-following client with Failover, a
// Redis Cluster client for a list of seed nodes, otherwise a single-server client. Every
// go-redis option the URL carries is applied; the pool holds at least MinPoolSize connections
// unless the URL sets pool_size. With Wait.Replicas > 0 every write waits for that many
// replicas (replication.Wait); a Cluster client reloads its slot map when a node stops
// answering and every ClusterReloadInterval, so it follows a failover within seconds.
func (r Redis) NewClient() redis.UniversalClient {
	c := r.newClient()
	// Wait fails only for negative replicas or a client type it does not know; Load validates
	// the first and newClient builds only *redis.Client and *redis.ClusterClient.
	_ = replication.Wait(c, r.Wait)
	replication.ReloadOnError(c)
	return c
}

// readTimeout is the read timeout of the setting's clients (go-redis's 3 s when the URL sets
// none), or 0 when reads have no timeout.
func (r Redis) readTimeout() time.Duration {
	if r.Options == nil {
		return 0
	}
	rt := r.Options.ReadTimeout
	if r.Failover != nil {
		rt = r.Failover.ReadTimeout
	}
	switch {
	case rt == 0:
		return 3 * time.Second
	case rt < 0:
		return 0
	}
	return rt
}

func (r Redis) newClient() redis.UniversalClient {
	floor := func(n int) int {
		if r.poolSizeSet {
			return n
		}
		return max(n, MinPoolSize)
	}
	switch {
	case r.Failover != nil:
		fo := *r.Failover
		fo.PoolSize = floor(fo.PoolSize)
		return redis.NewFailoverClient(&fo)
	case r.Cluster():
		o := r.Options
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: r.Addrs, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
			Protocol: o.Protocol, ClientName: o.ClientName, MaxRetries: o.MaxRetries,
			MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			PoolFIFO: o.PoolFIFO, PoolSize: floor(o.PoolSize), PoolTimeout: o.PoolTimeout,
			MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
			ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
			ClusterStateReloadInterval: ClusterReloadInterval,
		})
	default:
		o := *r.Options
		o.PoolSize = floor(o.PoolSize)
		return redis.NewClient(&o)
	}
}

// Redacted returns the URL (each URL of a list) with its password masked, for logs.
func (r Redis) Redacted() string {
	parts := strings.Split(r.URL, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "redis://?"
			continue
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}

// ParseRedisURL parses the gem's Redis URL form, which adds a namespace segment after the
// database number. A comma-separated list of several URLs names the seed nodes of a Redis
// Cluster (the client discovers the other nodes). Unlike the gem, whose list meant client-side
// sharding over independent servers, the drain does not shard by itself. The URLs of a list
// must agree on user, password, scheme (TLS) and namespace, and name database 0 (a cluster
// has only that one).
func ParseRedisURL(raw string) (Redis, error) {
	var urls []string
	for _, p := range strings.Split(raw, ",") {
		if p = strings.TrimSpace(p); p != "" {
			urls = append(urls, p)
		}
	}
	if len(urls) == 0 {
		return Redis{}, fmt.Errorf("is empty: want redis[s]://[user:pass@]host:port[/db[/namespace]]")
	}
	first, err := parseOne(urls[0])
	if err != nil {
		return Redis{}, err
	}
	first.URL = strings.Join(urls, ",")
	first.Addrs = []string{first.Options.Addr}
	if first.Failover != nil {
		// Sentinels: each further URL adds one (only its host is read).
		for _, u := range urls[1:] {
			r, err := url.Parse(u)
			if err != nil || r.Host == "" {
				return Redis{}, fmt.Errorf("%s: not a Sentinel URL", redact(u))
			}
			first.Failover.SentinelAddrs = append(first.Failover.SentinelAddrs, hostPort(r, "26379"))
		}
		first.Addrs = first.Failover.SentinelAddrs
		return first, nil
	}
	if len(urls) == 1 {
		return first, nil
	}
	if first.Options.DB != 0 {
		return Redis{}, fmt.Errorf("%s: a list of URLs names Redis Cluster seed nodes, and a cluster has only database 0", redact(urls[0]))
	}
	for _, u := range urls[1:] {
		r, err := parseOne(u)
		if err != nil {
			return Redis{}, err
		}
		o, f := r.Options, first.Options
		switch {
		case o.DB != 0:
			return Redis{}, fmt.Errorf("%s: a list of URLs names Redis Cluster seed nodes, and a cluster has only database 0", redact(u))
		case o.Username != f.Username || o.Password != f.Password:
			return Redis{}, fmt.Errorf("%s: every URL of a Redis Cluster list must have the same user and password", redact(u))
		case (o.TLSConfig == nil) != (f.TLSConfig == nil):
			return Redis{}, fmt.Errorf("%s: every URL of a Redis Cluster list must use the same scheme (redis or rediss)", redact(u))
		case r.Namespace != first.Namespace:
			return Redis{}, fmt.Errorf("%s: every URL of a Redis Cluster list must name the same namespace (%q, not %q)", redact(u), first.Namespace, r.Namespace)
		}
		first.Addrs = append(first.Addrs, o.Addr)
	}
	return first, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "redis://?"
	}
	return u.Redacted()
}

// parseOne parses one URL of the gem's form: it validates the scheme, host and path, takes the
// namespace segment off, and lets go-redis parse the rest, query options included.
func parseOne(raw string) (Redis, error) {
	u, err := url.Parse(raw)
	if err != nil { // the value may hold a password: do not repeat it
		return Redis{}, fmt.Errorf("is not a URL: want redis[s]://[user:pass@]host:port[/db[/namespace]]")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return Redis{}, fmt.Errorf("%s: scheme must be redis or rediss", u.Redacted())
	}
	if u.Host == "" {
		return Redis{}, fmt.Errorf("%s: missing host", u.Redacted())
	}
	ns, db := DefaultNamespace, 0
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) > 0 && segs[0] != "" {
		if db, err = strconv.Atoi(segs[0]); err != nil || db < 0 {
			return Redis{}, fmt.Errorf("%s: database %q must be a whole number", u.Redacted(), segs[0])
		}
	}
	if len(segs) > 1 && segs[1] != "" {
		ns = segs[1]
	}
	if len(segs) > 2 {
		return Redis{}, fmt.Errorf("%s: path must be /db or /db/namespace", u.Redacted())
	}
	if strings.ContainsAny(ns, "{}") {
		return Redis{}, fmt.Errorf("%s: namespace %q must not contain braces", u.Redacted(), ns)
	}
	if u.User != nil {
		if _, hasPass := u.User.Password(); !hasPass {
			// redis://pass@ means a password with no ACL user, as redis://:pass@ does.
			u.User = url.UserPassword("", u.User.Username())
		}
	}
	stripped := *u
	stripped.Path = "/" + strconv.Itoa(db)
	query := u.Query()
	r := Redis{URL: raw, Namespace: ns, poolSizeSet: query.Get("pool_size") != ""}
	if query.Get("master_name") != "" {
		fo, err := redis.ParseFailoverURL(stripped.String())
		if err != nil {
			return Redis{}, fmt.Errorf("%s: %v", u.Redacted(), strings.TrimPrefix(err.Error(), "redis: "))
		}
		r.Failover = fo
		// Options describe the first Sentinel's address; clients connect through Failover.
		r.Options = &redis.Options{Addr: hostPort(u, "26379"), Username: fo.Username, Password: fo.Password, DB: fo.DB, TLSConfig: fo.TLSConfig}
		return r, nil
	}
	opts, err := redis.ParseURL(stripped.String())
	if err != nil {
		return Redis{}, fmt.Errorf("%s: %v", u.Redacted(), strings.TrimPrefix(err.Error(), "redis: "))
	}
	if opts.TLSConfig != nil {
		opts.TLSConfig.MinVersion = tls.VersionTLS12
	}
	r.Options = opts
	return r, nil
}

// hostPort is u's host:port, with port def when the URL names none.
func hostPort(u *url.URL, def string) string {
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), def)
	}
	return u.Host
}
