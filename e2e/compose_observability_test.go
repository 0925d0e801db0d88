package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// TestPrometheusConfig checks deploy/prometheus/prometheus.yml with promtool and that it
// scrapes every service's admin address (the port of its compose health check) under the job
// name the alert rules select, and loads the rules.
func TestPrometheusConfig(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed (apt-get install -y prometheus): %v", err)
	}
	dir := filepath.Join(checkout(t), "deploy", "prometheus")
	cmd := exec.Command(promtool, "check", "config", "prometheus.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
			DNS     []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.RuleFiles, "alerts.yaml") {
		t.Errorf("rule_files = %v, want alerts.yaml", cfg.RuleFiles)
	}
	jobs := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, d := range sc.DNS {
			for _, n := range d.Names {
				jobs[sc.JobName] = n + ":" + strconv.Itoa(d.Port)
			}
		}
	}
	for name, d := range drainServices {
		if want := name + ":" + healthPort(d.health); jobs["drain-"+name] != want {
			t.Errorf("job drain-%s scrapes %q, want %q (every replica of the compose service)", name, jobs["drain-"+name], want)
		}
	}
}

// TestGrafanaProvisioning checks that Grafana gets the stack's Prometheus as its default
// datasource and loads the drain dashboard from where compose mounts it.
func TestGrafanaProvisioning(t *testing.T) {
	dir := filepath.Join(checkout(t), "deploy", "grafana", "provisioning")
	var ds struct {
		Datasources []struct {
			Type, URL string
			IsDefault bool `yaml:"isDefault"`
		}
	}
	readYAML(t, filepath.Join(dir, "datasources", "prometheus.yaml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" || !ds.Datasources[0].IsDefault {
		t.Errorf("datasources = %+v, want the default prometheus at http://prometheus:9090", ds.Datasources)
	}
	var dash struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		}
	}
	readYAML(t, filepath.Join(dir, "dashboards", "drain.yaml"), &dash)
	if len(dash.Providers) != 1 || dash.Providers[0].Type != "file" || dash.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard providers = %+v, want files from /var/lib/grafana/dashboards (where compose mounts drain.json)", dash.Providers)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

var envLine = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=(.*)$`)

// TestComposeEnvExample checks .env.example: every setting it lists is one compose.yaml uses,
// and the stack loads with it (plus a token) as .env, the values reaching the services.
func TestComposeEnvExample(t *testing.T) {
	f, err := os.Open(filepath.Join(checkout(t), ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	compose, err := os.ReadFile(filepath.Join(checkout(t), "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := envLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf(".env.example: %q is not NAME=value", line)
			continue
		}
		env[m[1]] = m[2]
		if !strings.Contains(string(compose), "${"+m[1]+":-") {
			t.Errorf(".env.example sets %s, which deploy/compose.yaml does not use", m[1])
		}
	}
	for _, want := range []string{"ROUTEMASTER_DRAIN_TOKENS", "DRAIN_CONSOLE_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if _, ok := env[want]; !ok {
			t.Errorf(".env.example does not list %s", want)
		}
	}
	env["ROUTEMASTER_DRAIN_TOKENS"] = "from-env-file"
	env["DRAIN_CONSOLE_TOKEN"] = "console-secret"
	p, err := loadCompose(t, env)
	if err != nil {
		t.Fatalf("compose with .env.example: %v", err)
	}
	if v := p.Services["ingest"].Environment["ROUTEMASTER_DRAIN_TOKENS"]; v == nil || *v != "from-env-file" {
		t.Errorf("ingest tokens = %v, want the .env value", v)
	}
	if v := p.Services["console"].Environment["DRAIN_CONSOLE_TOKEN"]; v == nil || *v != "console-secret" {
		t.Errorf("console token = %v, want the .env value", v)
	}
}
