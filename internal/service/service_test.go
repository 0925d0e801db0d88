package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/config"
)

// adminOnLoopback is the environment every test run of main needs: the admin server on a free
// loopback port rather than the service's default.
var adminOnLoopback = []string{"DRAIN_ADMIN_ADDR=127.0.0.1:0"}

func neverRun(t *testing.T) func(context.Context, *Lifecycle) error {
	return func(context.Context, *Lifecycle) error {
		t.Fatal("run called")
		return nil
	}
}

func TestMainHelpListsVariables(t *testing.T) {
	var out bytes.Buffer
	code := main(config.Sweeper, "sweeps the dirty map", []string{"-h"}, nil, io.Discard, &out, neverRun(t))
	if code != 0 || !strings.Contains(out.String(), "DRAIN_SWEEP_INTERVAL") || !strings.Contains(out.String(), "sweeps the dirty map") ||
		!strings.Contains(out.String(), "-version") {
		t.Errorf("exit %d, output:\n%s", code, out.String())
	}
}

// -version prints one line on stdout, starting with the service's name and naming the Go
// version, and exits 0 without reading the configuration (here a bad one).
func TestMainVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := main(config.Ingest, "", []string{"-version"}, []string{"DRAIN_INGEST_ADDR=:0"}, &stdout, &stderr, neverRun(t))
	line := stdout.String()
	if code != 0 || strings.Count(line, "\n") != 1 || !strings.HasPrefix(line, "ingest ") || !strings.Contains(line, "(go1.") || stderr.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, line, stderr.String())
	}
}

func TestBuildInfoLine(t *testing.T) {
	for _, tc := range []struct {
		b    BuildInfo
		want string
	}{
		{BuildInfo{Version: "devel", GoVersion: "go1.26.0"}, "warmer devel (go1.26.0)"},
		{BuildInfo{Version: "v0.1.0", GoVersion: "go1.26.1", Revision: "6048a8446cfc4d04ecc852f4da189e374f5cb732"},
			"warmer v0.1.0 (go1.26.1, rev 6048a8446cfc)"},
		{BuildInfo{Version: "devel", GoVersion: "go1.26.1", Revision: "abc1234", Modified: true},
			"warmer devel (go1.26.1, rev abc1234, modified)"},
	} {
		if got := tc.b.Line("warmer"); got != tc.want {
			t.Errorf("Line = %q, want %q", got, tc.want)
		}
	}
}

func TestMainBadConfigIsOneLine(t *testing.T) {
	var out bytes.Buffer
	code := main(config.Ingest, "", nil, []string{"DRAIN_INGEST_ADDR=:0"}, io.Discard, &out, neverRun(t))
	if code != 2 || strings.Count(out.String(), "\n") != 1 || !strings.Contains(out.String(), "ROUTEMASTER_DRAIN_TOKENS") {
		t.Errorf("exit %d, output %q", code, out.String())
	}
}

func TestMainRunFailureExits1(t *testing.T) {
	var out bytes.Buffer
	code := main(config.Filter, "", nil, adminOnLoopback, io.Discard, &out, func(context.Context, *Lifecycle) error {
		return errors.New("boom")
	})
	if code != 1 || !strings.Contains(out.String(), `"level":"ERROR"`) || !strings.Contains(out.String(), "boom") {
		t.Errorf("exit %d, want 1; output:\n%s", code, out.String())
	}
}

// An admin address already taken stops the service at start, naming DRAIN_ADMIN_ADDR.
func TestMainAdminAddressTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out bytes.Buffer
	code := main(config.Warmer, "", nil, []string{"DRAIN_ADMIN_ADDR=" + ln.Addr().String()}, io.Discard, &out, neverRun(t))
	if code != 1 || !strings.Contains(out.String(), "DRAIN_ADMIN_ADDR") {
		t.Errorf("exit %d, want 1; output:\n%s", code, out.String())
	}
}

// The JSON logs write durations as Go duration strings, at the top level, in groups and
// through With, never as slog's default integer nanoseconds; other values keep their type.
func TestLoggerWritesDurationsAsStrings(t *testing.T) {
	var out bytes.Buffer
	log := NewLogger(&out, "info").With("timeout", 25*time.Second)
	log.Info("fetched", "took", 200*time.Millisecond, "n", 3,
		slog.Group("retry", "delay", 90*time.Second), "any", any(1500*time.Microsecond))
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", out.String(), err)
	}
	want := map[string]any{"timeout": "25s", "took": "200ms", "n": float64(3), "any": "1.5ms"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %#v, want %#v (line %s)", k, line[k], v, out.String())
		}
	}
	if g, _ := line["retry"].(map[string]any); g["delay"] != "1m30s" {
		t.Errorf("retry.delay = %#v, want \"1m30s\" (line %s)", g["delay"], out.String())
	}
}
