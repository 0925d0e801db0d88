// Package svc runs a drain service binary as a separate process for a benchmark. The e2e
// module may not import the services' own packages (they live under services/*/internal), so
// a benchmark measures the real binary: built by stack.Build (`go build` in services/<name>,
// as `make build` does), started by a stack.Proc and configured only through environment
// variables, and waited for on /readyz.
package svc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/routemaster-drain/drain/e2e/devstack/stack"
	"github.com/routemaster-drain/drain/pkg/config"
)

// Build compiles the named services (ingest, filter, warmer, sweeper) from the repository that
// holds the working directory into dir.
func Build(ctx context.Context, dir string, names ...string) error {
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	return stack.Build(ctx, root, dir, os.Stderr, names...)
}

// BuildRevision compiles the named services as they were at the git revision rev of the
// repository at root (`git archive` of rev, built in a temporary directory with that tree's
// own go.work) into dir: the binaries of an earlier round, measured beside today's.
func BuildRevision(ctx context.Context, root, rev, dir string, names ...string) error {
	tree, err := os.MkdirTemp("", "bench-rev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	extract := exec.CommandContext(ctx, "tar", "-x", "-C", tree)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	extract.Stdin = pipe
	var stderr bytes.Buffer
	archive.Stderr, extract.Stderr = &stderr, &stderr
	if err := extract.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		_ = extract.Wait()
		return fmt.Errorf("git archive %s: %w: %s", rev, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := extract.Wait(); err != nil {
		return fmt.Errorf("extract %s: %w: %s", rev, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stack.Build(ctx, tree, dir, os.Stderr, names...)
}

// Service is one running service binary.
type Service struct {
	*stack.Proc
	// Addr is host:port of its HTTP server: the bus port for ingest (DRAIN_INGEST_ADDR), the
	// admin port (DRAIN_ADMIN_ADDR) for the others.
	Addr string
	// Admin is host:port of its admin server (DRAIN_ADMIN_ADDR): /metrics, and /debug/pprof/
	// with DRAIN_PPROF=true.
	Admin string
}

// URL is http://Addr + path.
func (s *Service) URL(path string) string { return "http://" + s.Addr + path }

// Start starts dir/name on free 127.0.0.1 ports (DRAIN_ADMIN_ADDR, and DRAIN_INGEST_ADDR for
// ingest, whose admin port the benchmarks do not use) and waits up to 30s for GET /readyz on
// Addr to answer 2xx. The process sees env and nothing else of the drain's configuration: every variable of config.Vars that
// env does not set is blanked, which config.Load reads as its default, so a stray DRAIN_* in
// the caller's shell cannot change what is measured (config.Load in-process saw only env).
// Its output goes to stderr, each line prefixed with name.
func Start(ctx context.Context, dir, name string, env []string) (*Service, error) {
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	addr := admin
	env = append(slices.Clone(env), "DRAIN_ADMIN_ADDR="+admin)
	if name == "ingest" {
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
		env = append(env, "DRAIN_INGEST_ADDR="+addr)
	}
	s := &Service{Addr: addr, Admin: admin, Proc: &stack.Proc{
		Name:   name,
		Path:   filepath.Join(dir, name),
		Env:    hermetic(env),
		Health: "http://" + addr + "/readyz",
		Log:    &stack.PrefixWriter{W: os.Stderr, Prefix: name + ": ", Mu: &sync.Mutex{}},
	}}
	if err := s.Proc.Start(); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.WaitHealthy(wctx); err != nil {
		s.Kill()
		return nil, fmt.Errorf("%s not ready: %w", name, err)
	}
	return s, nil
}

// freeAddr is a free 127.0.0.1 host:port.
func freeAddr() (string, error) {
	port, err := stack.FreePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(port), nil
}

// Close stops the process: SIGTERM, then SIGKILL after 30s.
func (s *Service) Close() { s.Stop(30 * time.Second) }

// hermetic returns env preceded by NAME= for every drain variable env does not set (the last
// value of a repeated variable wins, so env's own settings are kept).
func hermetic(env []string) []string {
	set := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	var out []string
	for _, v := range config.Vars {
		if !set[v.Name] {
			out = append(out, v.Name+"=")
		}
	}
	return append(out, env...)
}

// Download saves the body of GET url in path (a profile from an admin address, say).
func Download(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// CPUSeconds is the user+system CPU time process pid has used so far, from /proc/<pid>/stat
// (0 when it cannot be read).
func CPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // USER_HZ
}
