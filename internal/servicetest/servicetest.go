// Package servicetest checks, against a service binary run as a real process, the lifecycle
// every drain service promises: -version prints one line, /healthz answers from the first
// instant whatever NATS and Redis do, /readyz names what is missing until it is there, and
// /metrics carries drain_build_info. Each service's tests call it on their own binary.
package servicetest

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

// Version runs bin -version and fails t unless it exits 0 having printed exactly one line
// that starts with name and names the Go toolchain.
func Version(t *testing.T, bin, name string) {
	t.Helper()
	out, err := exec.Command(bin, "-version").Output()
	if err != nil {
		t.Fatalf("%s -version: %v\n%s", name, err, out)
	}
	line := string(out)
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") || !strings.HasPrefix(line, name+" ") || !strings.Contains(line, "(go1.") {
		t.Errorf("%s -version printed %q, want one line %q", name, line, name+" <version> (go1.…)")
	}
}

// Service is a service process started by StartWithoutDependencies, with the NATS and Redis
// servers its configuration points at.
type Service struct {
	*draintest.Process
	// Admin is the admin address (DRAIN_ADMIN_ADDR) on 127.0.0.1.
	Admin string
	NATS  *draintest.NATS
	Redis *draintest.Redis
}

// StartWithoutDependencies starts private NATS and Redis servers and stops them, so their
// ports are closed, then starts bin with env plus NATS_URL, ROUTEMASTER_DRAIN_REDIS and
// ROUTEMASTER_CACHE_REDIS pointing at them and DRAIN_ADMIN_ADDR on a free port. It fails t
// unless /healthz answers 200 within 3 s of the start and /readyz then answers 503 "not ready"
// listing exactly missing, and /metrics carries drain_build_info for service.
func StartWithoutDependencies(t *testing.T, bin, service string, env []string, missing ...string) *Service {
	t.Helper()
	s := &Service{Admin: draintest.FreeAddr(t), NATS: draintest.StartNATS(t), Redis: draintest.StartRedis(t)}
	s.NATS.Stop()
	s.Redis.Stop()
	env = append(slices.Clone(env), "NATS_URL="+s.NATS.URL(), "ROUTEMASTER_DRAIN_REDIS="+s.Redis.URL(0, ""),
		"ROUTEMASTER_CACHE_REDIS="+s.Redis.URL(0, ""), "DRAIN_ADMIN_ADDR="+s.Admin)
	s.Process = draintest.StartProcess(t, bin, env)
	s.WaitHTTP(s.URL("/healthz"), http.StatusOK, 3*time.Second)

	var last Readiness
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, r := s.Ready(t)
		if code == http.StatusServiceUnavailable && r.Status == "not ready" && slices.Equal(r.Missing, missing) {
			break
		}
		last = r
		if time.Now().After(deadline) {
			t.Fatalf("%s /readyz without NATS and Redis: %d %+v, want 503 not ready missing %v\n%s", service, code, last, missing, s.Output)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := Get(t, s.URL("/metrics")); code != http.StatusOK || !strings.Contains(body, "drain_build_info{") ||
		!strings.Contains(body, `service="`+service+`"`) {
		t.Errorf("%s /metrics = %d without drain_build_info{service=%q}", service, code, service)
	}
	return s
}

// URL is the admin server's URL of path.
func (s *Service) URL(path string) string { return "http://" + s.Admin + path }

// Readiness is the body of /readyz.
type Readiness struct {
	Status  string            `json:"status"`
	Missing []string          `json:"missing"`
	Errors  map[string]string `json:"errors"`
}

// Ready asks the admin server's /readyz and returns its status code and decoded body.
func (s *Service) Ready(t *testing.T) (int, Readiness) {
	t.Helper()
	code, body := Get(t, s.URL("/readyz"))
	var r Readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz answered %d %q: %v", code, body, err)
	}
	return code, r
}

// StartDependencies starts NATS and Redis again on their ports and fails t unless /readyz
// answers 200 within timeout, the same process still running.
func (s *Service) StartDependencies(t *testing.T, timeout time.Duration) {
	t.Helper()
	s.NATS.Start()
	s.Redis.Start()
	s.WaitHTTP(s.URL("/readyz"), http.StatusOK, timeout)
}

// Get sends GET url and returns the status code and body; it fails t when the request fails.
func Get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// Lifecycle checks a service's whole lifecycle promise on the binary of the main package in
// the test's directory: -version (Version), then a start with NATS and Redis down that is live
// at once and names missing (StartWithoutDependencies), turning ready once they are up without
// a restart (StartDependencies).
func Lifecycle(t *testing.T, service string, env []string, missing ...string) {
	bin := draintest.BuildBinary(t, ".")
	t.Run("version", func(t *testing.T) { Version(t, bin, service) })
	t.Run("starts before its dependencies", func(t *testing.T) {
		s := StartWithoutDependencies(t, bin, service, env, missing...)
		s.StartDependencies(t, 30*time.Second)
	})
}
