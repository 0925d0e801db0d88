package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

// TestAlertRules runs the alert rules' unit tests with promtool (Debian's prometheus package;
// .ci/run installs it).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed (apt-get install -y prometheus): %v", err)
	}
	dir := filepath.Join(checkout(t), "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

var metricName = regexp.MustCompile(`\bdrain_[a-z_]+`)

// dashboardMetrics returns the drain metric families that the Grafana dashboard and the alert
// rules query, histogram suffixes removed.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	var exprs []string
	raw, err := os.ReadFile(filepath.Join(checkout(t), "deploy", "grafana", "drain.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/drain.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	rules, err := os.ReadFile(filepath.Join(checkout(t), "deploy", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	exprs = append(exprs, string(rules))
	var names []string
	for _, e := range exprs {
		// A name matcher such as {__name__=~"drain_(filter|warmer)_messages_total"} names two.
		e = strings.ReplaceAll(e, `drain_(filter|warmer)_messages_total`, "drain_filter_messages_total drain_warmer_messages_total")
		for _, n := range metricName.FindAllString(e, -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				n = strings.TrimSuffix(n, suffix)
			}
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

var familyLine = regexp.MustCompile(`(?m)^# TYPE (drain_[a-z_]+) `)

// TestMetricsServedForDashboardAndAlerts runs the whole pipeline as processes, drives one
// batch through it (ingest, filter, a warm fetch from a real origin, a sweep), scrapes every
// service's /metrics and checks that every drain metric the Grafana dashboard and the alert
// rules query is exported by some service, and that every exported drain metric follows the
// one naming scheme drain_<stage>_… .
func TestMetricsServedForDashboardAndAlerts(t *testing.T) {
	want := dashboardMetrics(t)
	if len(want) < 15 {
		t.Fatalf("the dashboard and rules query only %d drain metrics: %v", len(want), want)
	}
	p := startPipeline(t, "ROUTEMASTER_ENABLE_API_CLIENT_CIRCUIT=YES")
	p.post(t, `[{"topic":"widgets","type":"create","url":"`+p.originURL("/widgets/1")+`","t":1}]`)
	draintest.Eventually(t, 20*time.Second, "the origin fetched", func() bool { return len(p.originRequests()) > 0 })

	stages := map[string]bool{"ingest": true, "filter": true, "warmer": true, "sweeper": true,
		"consumer": true, "apiclient": true, "cache": true, "build": true}
	exported := map[string][]string{} // family → services
	draintest.Eventually(t, 20*time.Second, "the consumers' backlog and a sweep on /metrics", func() bool {
		clear(exported)
		for _, s := range pipelineServices {
			for _, m := range familyLine.FindAllStringSubmatch(p.scrape(t, s), -1) {
				exported[m[1]] = append(exported[m[1]], s)
			}
		}
		return slices.Equal(exported["drain_consumer_pending_messages"], []string{"filter", "warmer"}) &&
			len(exported["drain_sweeper_sweep_duration_seconds"]) > 0
	})
	for _, name := range want {
		if len(exported[name]) == 0 {
			t.Errorf("%s is queried by the dashboard or the alert rules but no service exports it", name)
		}
	}
	for name, by := range exported {
		stage, _, _ := strings.Cut(strings.TrimPrefix(name, "drain_"), "_")
		if !stages[stage] {
			t.Errorf("%s (from %v) does not follow drain_<stage>_… with a stage of %v", name, by, slices.Sorted(maps.Keys(stages)))
		}
	}
	for _, name := range []string{"drain_consumer_pending_messages", "drain_consumer_ack_pending_messages"} {
		for _, s := range []string{"filter", "warmer"} {
			if !slices.Contains(exported[name], s) {
				t.Errorf("%s does not export %s", s, name)
			}
		}
	}
	if !strings.Contains(p.scrape(t, "filter"), `drain_consumer_pending_messages{consumer="e2e_filter"} 0`) {
		t.Errorf("filter's backlog is not 0 after the batch:\n%s", p.scrape(t, "filter"))
	}
}
