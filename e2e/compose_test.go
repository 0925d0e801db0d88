package e2e

import (
	"context"
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
// the address its /healthz answers on inside the container (its admin address).
var drainServices = map[string]struct {
	svc     config.Service
	health  string
	scaling bool
}{
	"ingest":  {config.Ingest, "http://127.0.0.1:9090/healthz", false},
	"filter":  {config.Filter, "http://127.0.0.1:9091/healthz", true},
	"warmer":  {config.Warmer, "http://127.0.0.1:9092/healthz", true},
	"sweeper": {config.Sweeper, "http://127.0.0.1:9093/healthz", true},
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

func TestComposeRequiresTokens(t *testing.T) {
	_, err := loadCompose(t, map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "ROUTEMASTER_DRAIN_TOKENS") {
		t.Fatalf("loading without ROUTEMASTER_DRAIN_TOKENS: err = %v, want one naming the variable", err)
	}
}

func TestComposeFile(t *testing.T) {
	p, err := loadCompose(t, map[string]string{"ROUTEMASTER_DRAIN_TOKENS": "demo"})
	if err != nil {
		t.Fatalf("load deploy/compose.yaml: %v", err)
	}
	want := []string{"drainctl", "filter", "ingest", "nats", "redis", "sweeper", "warmer"}
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

	t.Run("volumes", func(t *testing.T) {
		for _, v := range []string{"nats-data", "redis-data"} {
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
	for _, v := range config.Vars {
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
