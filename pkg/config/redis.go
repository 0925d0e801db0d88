package config

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultNamespace is the key namespace when a Redis URL names none (the gem's "rm").
const DefaultNamespace = "rm"

// Redis is a parsed Redis URL: redis[s]://[user:pass@]host:port[/db[/namespace]].
type Redis struct {
	URL       string // as configured, password included: never log it
	Options   *redis.Options
	Namespace string
}

// Redacted returns the URL with its password masked, for logs.
func (r Redis) Redacted() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return "redis://?"
	}
	return u.Redacted()
}

// ParseRedisURL parses the gem's Redis URL form, which adds a namespace segment after the
// database number. Only the first of a comma-separated list is used (sharding across several
// Redis URLs is not supported; use Redis Cluster or a proxy).
func ParseRedisURL(raw string) (Redis, error) {
	raw = strings.TrimSpace(strings.Split(raw, ",")[0])
	u, err := url.Parse(raw)
	if err != nil {
		return Redis{}, fmt.Errorf("%q is not a URL", raw)
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
