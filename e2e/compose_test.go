package e2e

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/routemaster-drain/drain/pkg/config"
)

// drainServices maps each compose service that runs a drain binary to its config.Service and
// the address its health check probes inside the container (/readyz of its admin address).
var drainServices = map[string]struct {
	svc     config.Service
	health  string
	scaling bool
}{
	"ingest":  {config.Ingest, "http://127.0.0.1:9090/readyz", false},
	"filter":  {config.Filter, "http://127.0.0.1:9091/readyz", true},
	"warmer":  {config.Warmer, "http://127.0.0.1:9092/readyz", true},
	"sweeper": {config.Sweeper, "http://127.0.0.1:9093/readyz", true},
}

func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	path, err := filepath.Abs("../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read compose file: %v", err)
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: data}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("routemaster-drain", true)
		o.Profiles = []string{"*"}
	})
}

// Without ROUTEMASTER_DRAIN_TOKENS the compose file still loads, so `make down`, `docker
// compose logs` and `docker compose run --rm drainctl ...` work; only ingest needs the tokens,
// and its start fails (exit 2) with an error naming the variable, while the other services'
// environments are accepted.
func TestComposeLoadsWithoutTokens(t *testing.T) {
	p, err := loadCompose(t, map[string]string{})
	if err != nil {
		t.Fatalf("loading without ROUTEMASTER_DRAIN_TOKENS: %v", err)
	}
	for name, d := range drainServices {
		_, err := config.Load(d.svc, environOf(p.Services[name]))
		var ve *config.VarError
		switch {
		case name == "ingest" && (!errors.As(err, &ve) || ve.Name != "ROUTEMASTER_DRAIN_TOKENS"):
			t.Errorf("ingest without tokens: config.Load = %v, want an error naming ROUTEMASTER_DRAIN_TOKENS (exit 2)", err)
		case name != "ingest" && err != nil:
			t.Errorf("%s without tokens: %v", name, err)
		}
	}
}

// environOf returns a compose service's environment as NAME=value entries.
func environOf(s types.ServiceConfig) []string {
	var environ []string
	for k, v := range s.Environment {
		if v != nil {
			environ = append(environ, k+"="+*v)
		}
	}
	return environ
}

func TestComposeFile(t *testing.T) {
	p, err := loadCompose(t, map[string]string{"ROUTEMASTER_DRAIN_TOKENS": "demo"})
	if err != nil {
		t.Fatalf("load deploy/compose.yaml: %v", err)
	}
	want := []string{"console", "drainctl", "filter", "grafana", "ingest", "nats", "prometheus", "redis", "sweeper", "warmer"}
	if got := p.ServiceNames(); !slices.Equal(sortedCopy(got), want) {
		t.Fatalf("services = %v, want %v", sortedCopy(got), want)
	}

	t.Run("nats", func(t *testing.T) {
		s := p.Services["nats"]
		cmd := strings.Join(s.Command, " ")
		for _, flag := range []string{"--jetstream", "--store_dir /data", "--http_port 8222"} {
			if !strings.Contains(cmd, flag) {
				t.Errorf("nats command %q lacks %q", cmd, flag)
			}
		}
		assertVolume(t, p, s, "nats-data", "/data")
		assertHealth(t, s, "http://127.0.0.1:8222/healthz")
	})

	t.Run("redis", func(t *testing.T) {
		s := p.Services["redis"]
		if cmd := strings.Join(s.Command, " "); !strings.Contains(cmd, "--appendonly yes") {
			t.Errorf("redis command %q does not turn AOF on", cmd)
		}
		assertVolume(t, p, s, "redis-data", "/data")
		assertHealth(t, s, "redis-cli ping")
	})

	for name, d := range drainServices {
		t.Run(name, func(t *testing.T) {
			s := p.Services[name]
			assertBuild(t, s, name)
			assertHealth(t, s, "/healthcheck "+d.health)
			if s.ReadOnly != true || s.User == "0" || s.User == "root" {
				t.Errorf("%s: want a read-only root file system and a non-root user (read_only=%v user=%q)", name, s.ReadOnly, s.User)
			}

			deps := map[string]bool{"nats": true, "redis": name != "ingest"}
			for dep, needed := range deps {
				got, ok := s.DependsOn[dep]
				switch {
				case needed && !ok:
					t.Errorf("%s does not depend on %s", name, dep)
				case needed && got.Condition != types.ServiceConditionHealthy:
					t.Errorf("%s depends on %s with condition %q, want %q", name, dep, got.Condition, types.ServiceConditionHealthy)
				}
			}

			if d.scaling {
				if s.ContainerName != "" {
					t.Errorf("%s pins container_name %q: --scale would fail", name, s.ContainerName)
				}
				for _, port := range s.Ports {
					if port.Published != "" {
						t.Errorf("%s publishes host port %s: --scale would fail", name, port.Published)
					}
				}
			}

			// The environment must be one the binary accepts, name only variables it reads,
			// and point at the compose network's servers.
			var environ []string
			for k, v := range s.Environment {
				if v == nil {
					t.Errorf("%s: variable %s has no value", name, k)
					continue
				}
				environ = append(environ, k+"="+*v)
				if !readBy(k, d.svc) {
					t.Errorf("%s sets %s, which it does not read (see config.Vars)", name, k)
				}
			}
			cfg, err := config.Load(d.svc, environ)
			if err != nil {
				t.Fatalf("%s: its compose environment is rejected: %v", name, err)
			}
			if cfg.NATS.URL != "nats://nats:4222" {
				t.Errorf("%s: NATS_URL = %q", name, cfg.NATS.URL)
			}
			if name != "ingest" && cfg.DrainRedis.Options.Addr != "redis:6379" {
				t.Errorf("%s: drain Redis at %q, want redis:6379", name, cfg.DrainRedis.Options.Addr)
			}
			switch name {
			case "ingest":
				if !slices.Equal(cfg.Ingest.Tokens, []string{"demo"}) {
					t.Errorf("ingest tokens = %v, want the ROUTEMASTER_DRAIN_TOKENS given", cfg.Ingest.Tokens)
				}
				if len(s.Ports) != 1 || s.Ports[0].Target != 8080 {
					t.Errorf("ingest ports = %+v, want container port 8080 published", s.Ports)
				}
			case "filter":
				if cfg.CacheMode != config.CacheWarm || !cfg.Dirty {
					t.Errorf("filter: cache mode %q dirty %v, want warm and true", cfg.CacheMode, cfg.Dirty)
				}
			case "sweeper":
				if !cfg.Sweep.Publish {
					t.Errorf("sweeper does not publish swept URLs")
				}
			}
			if port := healthPort(d.health); cfg.AdminAddr != ":"+port {
				t.Errorf("%s: admin address %q does not match its health check port %s", name, cfg.AdminAddr, port)
			}
			if name == "ingest" && cfg.Ingest.Addr != ":8080" {
				t.Errorf("ingest listens on %q, the published port is 8080", cfg.Ingest.Addr)
			}
		})
	}

	t.Run("drainctl", func(t *testing.T) {
		s := p.Services["drainctl"]
		assertBuild(t, s, "drainctl")
		if !slices.Contains(s.Profiles, "tools") {
			t.Errorf("drainctl should only run on demand (profile tools), profiles = %v", s.Profiles)
		}
	})

	t.Run("console", func(t *testing.T) {
		s := p.Services["console"]
		assertBuild(t, s, "drainctl")
		if !slices.Equal(s.Command, types.ShellCommand{"console"}) {
			t.Errorf("console command = %v, want [console] (drainctl console)", s.Command)
		}
		if len(s.Profiles) != 0 {
			t.Errorf("console should run with the stack, profiles = %v", s.Profiles)
		}
		env := s.Environment
		if v := env["DRAIN_CONSOLE_ADDR"]; v == nil || *v != "0.0.0.0:9099" {
			t.Errorf("DRAIN_CONSOLE_ADDR = %v, want 0.0.0.0:9099", v)
		}
		if _, ok := env["DRAIN_CONSOLE_TOKEN"]; !ok {
			t.Errorf("console gets no DRAIN_CONSOLE_TOKEN")
		}
		if len(s.Ports) != 1 || s.Ports[0].Target != 9099 {
			t.Errorf("console ports = %+v, want container port 9099 published", s.Ports)
		}
	})

	t.Run("observability", func(t *testing.T) {
		prom, graf := p.Services["prometheus"], p.Services["grafana"]
		for _, s := range []types.ServiceConfig{prom, graf} {
			if !slices.Equal(s.Profiles, []string{"observability"}) {
				t.Errorf("%s profiles = %v, want [observability]", s.Name, s.Profiles)
			}
		}
		promDir, _ := filepath.Abs("../deploy/prometheus")
		assertBind(t, prom, promDir, "/etc/prometheus")
		if cmd := strings.Join(prom.Command, " "); !strings.Contains(cmd, "--config.file=/etc/prometheus/prometheus.yml") {
			t.Errorf("prometheus command %q does not load /etc/prometheus/prometheus.yml", cmd)
		}
		provisioning, _ := filepath.Abs("../deploy/grafana/provisioning")
		dashboard, _ := filepath.Abs("../deploy/grafana/drain.json")
		assertBind(t, graf, provisioning, "/etc/grafana/provisioning")
		assertBind(t, graf, dashboard, "/var/lib/grafana/dashboards/drain.json")
	})

	t.Run("volumes", func(t *testing.T) {
		for _, v := range []string{"nats-data", "redis-data", "prometheus-data", "grafana-data"} {
			if _, ok := p.Volumes[v]; !ok {
				t.Errorf("volume %s is not declared", v)
			}
		}
	})
}

func TestComposeEnvironmentOverrides(t *testing.T) {
	p, err := loadCompose(t, map[string]string{
		"ROUTEMASTER_DRAIN_TOKENS": "a,b",
		"DRAIN_PREFIX":             "staging",
		"DRAIN_INGEST_PORT":        "18080",
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range drainServices {
		if got := *p.Services[name].Environment["DRAIN_PREFIX"]; got != "staging" {
			t.Errorf("%s DRAIN_PREFIX = %q, want the exported staging", name, got)
		}
	}
	if got := p.Services["ingest"].Ports[0].Published; got != "18080" {
		t.Errorf("ingest host port = %q, want 18080", got)
	}
}

func assertBuild(t *testing.T, s types.ServiceConfig, name string) {
	t.Helper()
	if s.Build == nil {
		t.Fatalf("%s has no build section", name)
	}
	root, _ := filepath.Abs("..")
	if filepath.Clean(s.Build.Context) != root {
		t.Errorf("%s build context = %q, want the repository root %q (go.work needs every module)", name, s.Build.Context, root)
	}
	if s.Build.Dockerfile != "deploy/Dockerfile" {
		t.Errorf("%s dockerfile = %q", name, s.Build.Dockerfile)
	}
	if arg := s.Build.Args["SERVICE"]; arg == nil || *arg != name {
		t.Errorf("%s build arg SERVICE = %v, want %q", name, arg, name)
	}
}

func assertHealth(t *testing.T, s types.ServiceConfig, want string) {
	t.Helper()
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 {
		t.Fatalf("%s has no health check", s.Name)
	}
	if hc.Test[0] != "CMD" {
		t.Errorf("%s health check %q must use the exec form (distroless has no shell)", s.Name, hc.Test)
	}
	if got := strings.Join(hc.Test[1:], " "); !strings.Contains(got, want) {
		t.Errorf("%s health check %q does not run %q", s.Name, got, want)
	}
	if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
		t.Errorf("%s health check needs interval, timeout and retries", s.Name)
	}
}

// assertBind checks that s mounts the host path source (absolute) at target, read-only.
func assertBind(t *testing.T, s types.ServiceConfig, source, target string) {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && filepath.Clean(v.Source) == source && v.Target == target {
			if !v.ReadOnly {
				t.Errorf("%s mounts %s read-write", s.Name, target)
			}
			return
		}
	}
	t.Errorf("%s does not mount %s at %s (volumes %+v)", s.Name, source, target, s.Volumes)
}

func assertVolume(t *testing.T, p *types.Project, s types.ServiceConfig, source, target string) {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == source && v.Target == target {
			return
		}
	}
	t.Errorf("%s does not mount volume %s at %s (volumes %+v)", s.Name, source, target, s.Volumes)
}

func readBy(name string, s config.Service) bool {
	for _, v := range append(slices.Clone(config.Vars), config.OTELVars...) {
		if v.Name != name {
			continue
		}
		return v.Services == nil || slices.Contains(v.Services, s)
	}
	return false
}

func healthPort(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return parsed.Port()
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
