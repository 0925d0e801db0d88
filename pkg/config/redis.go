package config

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/dirty"
)

// DefaultNamespace is the key namespace when a Redis URL names none: the libraries' own
// default (the gem's "rm", shared by cache, dirty and reorder).
const DefaultNamespace = dirty.DefaultNamespace

// Redis is a parsed Redis setting: one URL redis[s]://[user:pass@]host:port[/db[/namespace]]
// for a single server, or a comma-separated list of such URLs naming the seed nodes of a Redis
// Cluster.
type Redis struct {
	// URL is the setting as configured, password included: never log it (use Redacted).
	URL string
	// Options are the client options of the first URL; for a single server, the whole setting.
	Options *redis.Options
	// Addrs are the host:port of every URL: one for a single server, several for Redis Cluster.
	Addrs []string
	// Namespace prefixes every key (the gem's namespace; DefaultNamespace when none is given).
	Namespace string
}

// Cluster reports whether the setting names several Redis Cluster seed nodes.
func (r Redis) Cluster() bool { return len(r.Addrs) > 1 }

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

// parseOne parses one URL of the gem's form.
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
	opts := &redis.Options{Addr: u.Host}
	if u.Port() == "" {
		opts.Addr = u.Host + ":6379"
	}
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
		if _, hasPass := u.User.Password(); !hasPass {
			// redis://:pass@ and redis://pass@ both mean a password with no ACL user.
			opts.Password, opts.Username = opts.Username, ""
		}
	}
	if u.Scheme == "rediss" {
		opts.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	ns := DefaultNamespace
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) > 0 && segs[0] != "" {
		db, err := strconv.Atoi(segs[0])
		if err != nil || db < 0 {
			return Redis{}, fmt.Errorf("%s: database %q must be a whole number", u.Redacted(), segs[0])
		}
		opts.DB = db
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
	return Redis{URL: raw, Options: opts, Namespace: ns}, nil
}
