package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Load(Filter, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"NATS URL", c.NATS.URL, "nats://127.0.0.1:4222"},
		{"prefix", c.Streams.Prefix, "routemaster"},
		{"drain redis addr", c.DrainRedis.Options.Addr, "127.0.0.1:6379"},
		{"drain redis namespace", c.DrainRedis.Namespace, "rm"},
		{"cache redis defaults to drain redis", c.CacheRedis.Options.Addr, "127.0.0.1:6379"},
		{"cache expiry 90 days", c.CacheExpiry, 90 * 24 * time.Hour},
		{"cache mode", c.CacheMode, CacheOff},
		{"admin addr", c.AdminAddr, ":9091"},
		{"ingest path", c.Ingest.Path, "/events"},
		{"max body", c.Ingest.MaxBody, int64(1 << 20)},
		{"sweep interval", c.Sweep.Interval, 5 * time.Minute},
		{"circuit off", c.Fetch.Breaker.Enabled, false},
		{"verify tls off", c.Fetch.VerifyTLS, false},
		{"timeout 1s", c.Fetch.Timeout, time.Second},
		{"breaker sleep", c.Fetch.Breaker.SleepWindow, 60 * time.Second},
		{"queue name", c.Warm.QueueName, "routemaster"},
		{"filter concurrency", c.Consumer.Concurrency, 32},
		{"warmer concurrency", Default(Warmer).Consumer.Concurrency, 64},
		{"warmer host concurrency", Default(Warmer).Warm.HostConcurrency, 64},
		{"stream replicas", c.Streams.Replicas, 1},
		{"stream management", string(c.Streams.Manage), "create"},
		{"three replicas", Default(Filter, "DRAIN_STREAM_REPLICAS=3").Streams.Replicas, 3},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// Every service has its own admin address by default, so the four run side by side on one host;
// DRAIN_ADMIN_ADDR overrides it, ingest's included.
func TestAdminAddrPerService(t *testing.T) {
	for svc, want := range map[Service]string{Ingest: ":9090", Filter: ":9091", Warmer: ":9092", Sweeper: ":9093"} {
		if got := Default(svc, "ROUTEMASTER_DRAIN_TOKENS=t").AdminAddr; got != want {
			t.Errorf("%s admin address %q, want %q", svc, got, want)
		}
		if got := Default(svc, "ROUTEMASTER_DRAIN_TOKENS=t", "DRAIN_ADMIN_ADDR=127.0.0.1:7000").AdminAddr; got != "127.0.0.1:7000" {
			t.Errorf("%s ignores DRAIN_ADMIN_ADDR: %q", svc, got)
		}
	}
	var b bytes.Buffer
	Usage(&b, Ingest)
	if !strings.Contains(b.String(), "DRAIN_ADMIN_ADDR") || !strings.Contains(b.String(), ":9090") {
		t.Errorf("ingest -h does not list DRAIN_ADMIN_ADDR with its default:\n%s", b.String())
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		service Service
		env     []string
		name    string // variable the error must name
	}{
		{Ingest, nil, "ROUTEMASTER_DRAIN_TOKENS"},
		{Ingest, []string{"ROUTEMASTER_DRAIN_TOKENS= , ,"}, "ROUTEMASTER_DRAIN_TOKENS"},
		{Ingest, []string{"ROUTEMASTER_DRAIN_TOKENS=a", "DRAIN_INGEST_MAX_BODY=lots"}, "DRAIN_INGEST_MAX_BODY"},
		{Ingest, []string{"ROUTEMASTER_DRAIN_TOKENS=a", "DRAIN_INGEST_PATH=events"}, "DRAIN_INGEST_PATH"},
		{Ingest, []string{"ROUTEMASTER_DRAIN_TOKENS=a", "DRAIN_INGEST_TLS_CERT=/c.pem"}, "DRAIN_INGEST_TLS_CERT"},
		{Filter, []string{"DRAIN_PREFIX=a.b"}, "DRAIN_PREFIX"},
		{Filter, []string{"DRAIN_CACHE_MODE=warmish"}, "DRAIN_CACHE_MODE"},
		{Filter, []string{"DRAIN_STREAM_REPLICAS=2"}, "DRAIN_STREAM_REPLICAS"},
		{Ingest, []string{"ROUTEMASTER_DRAIN_TOKENS=a", "DRAIN_STREAM_REPLICAS=4"}, "DRAIN_STREAM_REPLICAS"},
		{Warmer, []string{"DRAIN_STREAM_MANAGE=always"}, "DRAIN_STREAM_MANAGE"},
		{Filter, []string{"ROUTEMASTER_DRAIN_REDIS=http://x"}, "ROUTEMASTER_DRAIN_REDIS"},
		{Filter, []string{"ROUTEMASTER_CACHE_REDIS=redis://h/notadb"}, "ROUTEMASTER_CACHE_REDIS"},
		{Filter, []string{"ROUTEMASTER_CACHE_EXPIRY=1e5"}, "ROUTEMASTER_CACHE_EXPIRY"},
		{Filter, []string{"DRAIN_ACK_WAIT=30"}, "DRAIN_ACK_WAIT"},
		{Filter, []string{"DRAIN_STREAM_MAX_AGE=1m"}, "DRAIN_DUPLICATE_WINDOW"},
		{Filter, []string{"DRAIN_DLQ_MAX_AGE=1m"}, "DRAIN_DUPLICATE_WINDOW"},
		{Filter, []string{"DRAIN_FILTER_DIRTY=maybe"}, "DRAIN_FILTER_DIRTY"},
		{Warmer, []string{"ROUTEMASTER_CACHE_AUTH=nocolons"}, "ROUTEMASTER_CACHE_AUTH"},
		{Warmer, []string{"ROUTEMASTER_CACHE_AUTH=(bad:u:p"}, "ROUTEMASTER_CACHE_AUTH"},
		{Warmer, []string{"ROUTEMASTER_CACHE_TIMEOUT=0"}, "ROUTEMASTER_CACHE_TIMEOUT"},
		{Warmer, []string{"api.test.ROUTEMASTER_CIRCUIT_BREAKER_ERROR_THRESHOLD=150"}, "api.test.ROUTEMASTER_CIRCUIT_BREAKER_ERROR_THRESHOLD"},
		{Warmer, []string{"DRAIN_METRICS_MAX_HOSTS=0"}, "DRAIN_METRICS_MAX_HOSTS"},
		{Warmer, []string{"DRAIN_BREAKER_MAX_HOSTS=lots"}, "DRAIN_BREAKER_MAX_HOSTS"},
		{Warmer, []string{"DRAIN_WARM_AUTH_OVER_HTTP=YES"}, "DRAIN_WARM_AUTH_OVER_HTTP"},
		{Sweeper, []string{"DRAIN_SWEEP_WEBHOOK_URL=ftp://x"}, "DRAIN_SWEEP_WEBHOOK_URL"},
		{Sweeper, []string{"DRAIN_SWEEP_PUBLISH=false"}, "DRAIN_SWEEP_PUBLISH"},
		{Drainctl, []string{"DRAIN_STATUS_ADMIN_URLS=http://filter:9091"}, "DRAIN_STATUS_ADMIN_URLS"},
		{Drainctl, []string{"DRAIN_STATUS_ADMIN_URLS=a=http://x:1,a=http://y:2"}, "DRAIN_STATUS_ADMIN_URLS"},
		{Drainctl, []string{"DRAIN_STATUS_ADMIN_URLS=a=ftp://x:1"}, "DRAIN_STATUS_ADMIN_URLS"},
		{Drainctl, []string{"DRAIN_STATUS_ADMIN_URLS=a=http://x:1/readyz"}, "DRAIN_STATUS_ADMIN_URLS"},
		{Drainctl, []string{"DRAIN_STATUS_ADMIN_URLS=a b=http://x:1"}, "DRAIN_STATUS_ADMIN_URLS"},
		{Drainctl, []string{"DRAIN_CONSOLE_ADDR=9099"}, "DRAIN_CONSOLE_ADDR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.service, tc.env)
			var ve *VarError
			if !errors.As(err, &ve) || ve.Name != tc.name {
				t.Fatalf("Load(%v) error = %v, want a VarError naming %s", tc.env, err, tc.name)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// A bad value of a variable a service does not read never stops that service: one shared
// environment serves every binary.
func TestOtherServicesSettingsIgnored(t *testing.T) {
	if _, err := Load(Ingest, []string{"ROUTEMASTER_DRAIN_TOKENS=x", "ROUTEMASTER_QUEUE_NAME=a.b", "DRAIN_SWEEP_WEBHOOK_URL=ftp://x",
		"api.test.ROUTEMASTER_CIRCUIT_BREAKER_ERROR_THRESHOLD=150", "ROUTEMASTER_CACHE_EXPIRY=soon"}); err != nil {
		t.Errorf("ingest refused another service's setting: %v", err)
	}
	if _, err := Load(Filter, []string{"DRAIN_SWEEP_WEBHOOK_URL=ftp://x", "DRAIN_INGEST_MAX_BODY=lots"}); err != nil {
		t.Errorf("filter refused another service's setting: %v", err)
	}
}

func TestTokensTrimmedAndEmptyIgnored(t *testing.T) {
	c, err := Load(Ingest, []string{"ROUTEMASTER_DRAIN_TOKENS=a, b,,c ,"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Ingest.Tokens, "|"); got != "a|b|c" {
		t.Errorf("tokens = %q", got)
	}
}

func TestRedisURL(t *testing.T) {
	tests := []struct {
		url, addr, user, pass, ns string
		db                        int
		tls                       bool
	}{
		{"redis://localhost/12", "localhost:6379", "", "", "rm", 12, false},
		{"redis://user:s3cr3t@myhost:1234/12/ns", "myhost:1234", "user", "s3cr3t", "ns", 12, false},
		{"redis://:s3cr3t@myhost:1234", "myhost:1234", "", "s3cr3t", "rm", 0, false},
		{"rediss://cache.example:6380/2/app", "cache.example:6380", "", "", "app", 2, true},
		{"redis://a:1/0/x, redis://b:2/0/x", "a:1", "", "", "x", 0, false},
	}
	for _, tc := range tests {
		r, err := ParseRedisURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		o := r.Options
		if o.Addr != tc.addr || o.Username != tc.user || o.Password != tc.pass || o.DB != tc.db || r.Namespace != tc.ns || (o.TLSConfig != nil) != tc.tls {
			t.Errorf("%s = addr %s user %q pass %q db %d ns %s tls %v", tc.url, o.Addr, o.Username, o.Password, o.DB, r.Namespace, o.TLSConfig != nil)
		}
	}
	r, _ := ParseRedisURL("redis://user:s3cr3t@myhost:1234/12/ns")
	if strings.Contains(r.Redacted(), "s3cr3t") {
		t.Errorf("Redacted leaks the password: %s", r.Redacted())
	}
	if r.Cluster() || len(r.Addrs) != 1 || r.Addrs[0] != "myhost:1234" {
		t.Errorf("single URL: Cluster() = %v, Addrs = %v", r.Cluster(), r.Addrs)
	}
}

// A list of several URLs names Redis Cluster seed nodes; they must agree on everything but
// the address.
func TestRedisClusterList(t *testing.T) {
	r, err := ParseRedisURL("rediss://u:s3cr3t@n1:7000/0/app, rediss://u:s3cr3t@n2:7001/0/app,rediss://u:s3cr3t@n3/0/app")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Cluster() || strings.Join(r.Addrs, " ") != "n1:7000 n2:7001 n3:6379" || r.Namespace != "app" ||
		r.Options.Username != "u" || r.Options.Password != "s3cr3t" || r.Options.TLSConfig == nil {
		t.Errorf("cluster list = addrs %v ns %s user %q tls %v", r.Addrs, r.Namespace, r.Options.Username, r.Options.TLSConfig != nil)
	}
	if red := r.Redacted(); strings.Contains(red, "s3cr3t") || strings.Count(red, "rediss://") != 3 {
		t.Errorf("Redacted = %s", red)
	}
	// Without a path every URL means database 0 and the default namespace.
	if r, err := ParseRedisURL("redis://a:1,redis://b:2"); err != nil || !r.Cluster() || r.Namespace != DefaultNamespace {
		t.Errorf("plain list = %+v, %v", r, err)
	}
	bad := map[string]string{
		"db not 0 (first)":   "redis://a:1/2,redis://b:2/2",
		"db not 0 (later)":   "redis://a:1,redis://b:2/3",
		"password differs":   "redis://:x@a:1,redis://:y@b:2",
		"user differs":       "redis://u:x@a:1,redis://v:x@b:2",
		"scheme differs":     "redis://a:1,rediss://b:2",
		"namespace differs":  "redis://a:1/0/one,redis://b:2/0/two",
		"later URL is bad":   "redis://a:1,http://b:2",
		"empty":              " , ",
		"password in errors": "redis://:s3cr3t@a:1/0/x,redis://:s3cr3t@b:2/0/y",
	}
	for name, raw := range bad {
		_, err := ParseRedisURL(raw)
		if err == nil {
			t.Errorf("%s: %q accepted", name, raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: error leaks the password: %v", name, err)
		}
	}
	_, err = Load(Filter, []string{"ROUTEMASTER_DRAIN_REDIS=redis://a:1/1,redis://b:2/1"})
	var ve *VarError
	if !errors.As(err, &ve) || ve.Name != "ROUTEMASTER_DRAIN_REDIS" || !strings.Contains(ve.Msg, "database 0") {
		t.Errorf("Load with a cluster list on db 1 = %v, want a VarError naming ROUTEMASTER_DRAIN_REDIS", err)
	}
}

func TestCircuitBreakerOverrides(t *testing.T) {
	c, err := Load(Warmer, []string{
		"ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT=yes",
		"ROUTEMASTER_CIRCUIT_BREAKER_VOLUME_THRESHOLD=10",
		"api.test.ROUTEMASTER_CIRCUIT_BREAKER_SLEEP_WINDOW=5",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Fetch.Breaker.Enabled {
		t.Error("circuit not enabled by yes")
	}
	b := c.Fetch.Breaker.For("api.test")
	if b.SleepWindow != 5*time.Second || b.VolumeThreshold != 10 || b.TimeWindow != 120*time.Second {
		t.Errorf("api.test breaker = %+v", b)
	}
	if d := c.Fetch.Breaker.For("other.test"); d.SleepWindow != 60*time.Second || d.VolumeThreshold != 10 {
		t.Errorf("default breaker = %+v", d)
	}
}

// The bounds on host names from event data and the plain-http auth switch reach the API
// client's options.
func TestFetchBounds(t *testing.T) {
	f := Default(Warmer, "DRAIN_METRICS_MAX_HOSTS=7", "DRAIN_BREAKER_MAX_HOSTS=9", "DRAIN_WARM_AUTH_OVER_HTTP=true").Fetch
	if f.MetricsMaxHosts != 7 || f.Breaker.MaxHosts != 9 || !f.AuthOverHTTP {
		t.Errorf("Fetch = MetricsMaxHosts %d, Breaker.MaxHosts %d, AuthOverHTTP %v", f.MetricsMaxHosts, f.Breaker.MaxHosts, f.AuthOverHTTP)
	}
}

func TestAuthRulesMatchWholeHost(t *testing.T) {
	c, err := Load(Warmer, []string{"ROUTEMASTER_CACHE_AUTH=example.com:u:p:with:colons,.*\\.internal:v:q"})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Fetch.Auth
	if len(r) != 2 || r[0].Password != "p:with:colons" {
		t.Fatalf("rules = %+v", r)
	}
	if !r[0].Host.MatchString("example.com") || r[0].Host.MatchString("example.com.evil.test") || r[0].Host.MatchString("notexample.com") {
		t.Error("rule 0 does not match exactly the whole host")
	}
	if !r[1].Host.MatchString("api.internal") {
		t.Error("rule 1 does not match api.internal")
	}
}

func TestUsageListsEveryVariableOfTheService(t *testing.T) {
	var b bytes.Buffer
	Usage(&b, Ingest)
	out := b.String()
	for _, v := range Vars {
		if v.readBy(Ingest) != strings.Contains(out, v.Name+" ") {
			t.Errorf("ingest usage and %s disagree (read by ingest: %v)", v.Name, v.readBy(Ingest))
		}
	}
	if !strings.Contains(out, "ROUTEMASTER_DRAIN_TOKENS") || !strings.Contains(out, "(required)") {
		t.Errorf("usage does not mark the tokens required:\n%s", out)
	}
}

func TestConsoleSettings(t *testing.T) {
	c := Default(Drainctl)
	if c.Console.Addr != "127.0.0.1:9099" || c.Console.Token != "" || c.Console.AdminURLs != nil {
		t.Fatalf("defaults: %+v", c.Console)
	}
	c = Default(Drainctl, "DRAIN_STATUS_ADMIN_URLS= ingest=http://ingest:9090/ , warmer-2=https://10.0.0.7:9092,,",
		"DRAIN_CONSOLE_ADDR=:9099", "DRAIN_CONSOLE_TOKEN= s3cret ")
	want := []AdminURL{{"ingest", "http://ingest:9090"}, {"warmer-2", "https://10.0.0.7:9092"}}
	if len(c.Console.AdminURLs) != 2 || c.Console.AdminURLs[0] != want[0] || c.Console.AdminURLs[1] != want[1] ||
		c.Console.Addr != ":9099" || c.Console.Token != "s3cret" {
		t.Fatalf("console settings: %+v", c.Console)
	}
	// Only drainctl reads them.
	if c := Default(Filter, "DRAIN_STATUS_ADMIN_URLS=junk", "DRAIN_CONSOLE_ADDR=junk"); c.Console.AdminURLs != nil {
		t.Fatalf("the filter read DRAIN_STATUS_ADMIN_URLS: %+v", c.Console)
	}
}

// Every service's -h lists the OpenTelemetry variables it honours; drainctl's does not.
func TestUsageListsOTELVariables(t *testing.T) {
	for _, s := range []Service{Ingest, Filter, Warmer, Sweeper, Drainctl} {
		var b strings.Builder
		Usage(&b, s)
		for _, v := range OTELVars {
			if got := strings.Contains(b.String(), v.Name); got != (s != Drainctl) {
				t.Errorf("%s -h names %s: %v", s, v.Name, got)
			}
		}
	}
}
