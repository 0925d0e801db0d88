package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every secret variable can come from a file named by <NAME>_FILE, as Docker and Kubernetes
// mount secrets; the file's final newline is not part of the value.
func TestSecretsFromFiles(t *testing.T) {
	tests := []struct {
		service Service
		name    string
		content string
		check   func(*Config) string // what Load made of the value
		want    string
	}{
		{Ingest, "ROUTEMASTER_DRAIN_TOKENS", "a,b\n", func(c *Config) string { return strings.Join(c.Ingest.Tokens, "|") }, "a|b"},
		{Filter, "NATS_URL", "nats://u:p@nats.internal:4222\r\n", func(c *Config) string { return c.NATS.URL }, "nats://u:p@nats.internal:4222"},
		{Filter, "ROUTEMASTER_DRAIN_REDIS", "redis://:pw@r1:6380/2/ns\n", func(c *Config) string { return c.DrainRedis.Options.Password + "@" + c.DrainRedis.Options.Addr }, "pw@r1:6380"},
		{Warmer, "ROUTEMASTER_CACHE_REDIS", "redis://:cpw@r2:6381/0\n", func(c *Config) string { return c.CacheRedis.Options.Password + "@" + c.CacheRedis.Options.Addr }, "cpw@r2:6381"},
		{Warmer, "ROUTEMASTER_CACHE_AUTH", "api\\.test:alice:s3cret", func(c *Config) string { return c.Fetch.Auth[0].User + ":" + c.Fetch.Auth[0].Password }, "alice:s3cret"},
		{Sweeper, "DRAIN_SWEEP_WEBHOOK_URL", "https://hook.test/x?token=t\n", func(c *Config) string { return c.Sweep.WebhookURL }, "https://hook.test/x?token=t"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !lookupVar(tc.name).Secret {
				t.Fatalf("%s is not marked secret", tc.name)
			}
			c, err := Load(tc.service, []string{tc.name + "_FILE=" + secretFile(t, tc.content)})
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.check(c); got != tc.want {
				t.Errorf("value from the file = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSecretFileErrors(t *testing.T) {
	const secret = "hunter2-do-not-print"
	missing := filepath.Join(t.TempDir(), "nope")
	tests := []struct {
		desc string
		env  []string
		name string   // the variable the error names
		has  []string // the error names these
	}{
		{"both set", []string{"ROUTEMASTER_CACHE_AUTH=x:u:" + secret, "ROUTEMASTER_CACHE_AUTH_FILE=" + secretFile(t, "x:u:p")},
			"ROUTEMASTER_CACHE_AUTH_FILE", []string{"ROUTEMASTER_CACHE_AUTH and ROUTEMASTER_CACHE_AUTH_FILE are both set"}},
		{"missing file", []string{"ROUTEMASTER_CACHE_AUTH_FILE=" + missing}, "ROUTEMASTER_CACHE_AUTH_FILE", []string{missing, "no such file"}},
		{"a directory", []string{"NATS_URL_FILE=" + t.TempDir()}, "NATS_URL_FILE", []string{"is a directory"}},
		// A bad value read from a file is reported like any bad value, without the credential.
		{"bad auth entry", []string{"ROUTEMASTER_CACHE_AUTH_FILE=" + secretFile(t, "ok:u:p,"+secret+"\n")}, "ROUTEMASTER_CACHE_AUTH", []string{"entry 2"}},
		{"bad redis URL", []string{"ROUTEMASTER_DRAIN_REDIS_FILE=" + secretFile(t, "redis://:"+secret+"@h:1/x\n")}, "ROUTEMASTER_DRAIN_REDIS", []string{"xxxxx"}},
		{"bad webhook URL", []string{"DRAIN_SWEEP_WEBHOOK_URL_FILE=" + secretFile(t, "ftp://"+secret)}, "DRAIN_SWEEP_WEBHOOK_URL", []string{"http(s) URL"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			svc := Warmer
			if strings.HasPrefix(tc.name, "DRAIN_SWEEP") {
				svc = Sweeper
			}
			_, err := Load(svc, tc.env)
			var ve *VarError
			if !errors.As(err, &ve) || ve.Name != tc.name {
				t.Fatalf("error %v, want a VarError naming %s", err, tc.name)
			}
			for _, h := range tc.has {
				if !strings.Contains(err.Error(), h) {
					t.Errorf("error %q does not say %q", err, h)
				}
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q shows the secret or spans lines", err)
			}
		})
	}
}

// A _FILE setting of a variable the service does not read is ignored, like the variable.
func TestOtherServicesSecretFilesIgnored(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := Load(Ingest, []string{"ROUTEMASTER_DRAIN_TOKENS=t", "ROUTEMASTER_CACHE_AUTH_FILE=" + missing}); err != nil {
		t.Errorf("ingest read the warmer's secret file: %v", err)
	}
}

func TestUsageListsSecretFiles(t *testing.T) {
	for _, svc := range []Service{Ingest, Filter, Warmer, Sweeper, Drainctl} {
		var b bytes.Buffer
		Usage(&b, svc)
		for _, v := range Vars {
			listed := strings.Contains(b.String(), "  "+v.Name+FileSuffix+" ")
			if want := v.Secret && v.readBy(svc); listed != want {
				t.Errorf("%s -h lists %s%s: %v, want %v", svc, v.Name, FileSuffix, listed, want)
			}
		}
	}
}
