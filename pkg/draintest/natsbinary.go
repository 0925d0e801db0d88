package draintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
)

// NATSServerVersion is the nats-server release that StartNATS runs.
const NATSServerVersion = "v2.15.2"

var natsBinary struct {
	once sync.Once
	path string
	err  error
}

// NATSServerBinary returns the path of the nats-server executable that StartNATS runs:
// $DRAIN_TEST_NATS_SERVER when set, otherwise nats-server NATSServerVersion built with
// `go install` from the Go module proxy into the user cache directory
// (~/.cache/routemaster-drain/nats-server-<version>/), once per machine; concurrent test
// binaries wait for the first build under a file lock. The server is a separate process, so
// neither it nor its dependencies ever enter the module graph of the library or of an app
// that uses draintest.
func NATSServerBinary(t T) string {
	t.Helper()
	natsBinary.once.Do(func() { natsBinary.path, natsBinary.err = buildNATSServer() })
	if natsBinary.err != nil {
		t.Fatalf("draintest: %v", natsBinary.err)
	}
	return natsBinary.path
}

func buildNATSServer() (string, error) {
	if p := os.Getenv("DRAIN_TEST_NATS_SERVER"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("DRAIN_TEST_NATS_SERVER=%s: %w", p, err)
		}
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for nats-server: %w (set DRAIN_TEST_NATS_SERVER)", err)
	}
	dir := filepath.Join(cache, "routemaster-drain", "nats-server-"+NATSServerVersion)
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built by another test binary while this one waited
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go not on PATH to build nats-server (set DRAIN_TEST_NATS_SERVER): %w", err)
	}
	cmd := exec.Command(goBin, "install", "github.com/nats-io/nats-server/v2@"+NATSServerVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install nats-server@%s: %v\n%s", NATSServerVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "nats-server"), bin); err != nil {
		return "", err
	}
	return bin, nil
}
