package draintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// binaries caches the builds of one test binary: one entry per package directory, built once,
// all in one temporary directory that RemoveBinaries deletes.
var binaries struct {
	mu     sync.Mutex
	dir    string
	builds map[string]*build
}

type build struct {
	once sync.Once
	sub  string // the build's own subdirectory name, so two packages named alike do not collide
	path string
	err  error
}

// BuildBinary builds the Go main package in pkgDir (relative to the test's working directory,
// e.g. "." or "..") with `go build` and returns the path of the executable, named after the
// directory. The package is built once per test binary: later calls for the same directory,
// from any test, return the same file (or fail with the same build error). Call RemoveBinaries
// from TestMain after m.Run to delete the builds.
func BuildBinary(t testing.TB, pkgDir string) string {
	t.Helper()
	abs, err := filepath.Abs(pkgDir)
	if err != nil {
		t.Fatal(err)
	}
	binaries.mu.Lock()
	if binaries.builds == nil {
		binaries.builds = map[string]*build{}
	}
	b := binaries.builds[abs]
	if b == nil {
		b = &build{sub: strconv.Itoa(len(binaries.builds))}
		binaries.builds[abs] = b
	}
	if binaries.dir == "" {
		binaries.dir, err = os.MkdirTemp("", "draintest-bin-")
	}
	dir := binaries.dir
	binaries.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	b.once.Do(func() {
		sub := filepath.Join(dir, b.sub)
		if b.err = os.Mkdir(sub, 0o755); b.err != nil {
			return
		}
		b.path = filepath.Join(sub, filepath.Base(abs))
		cmd := exec.Command("go", "build", "-o", b.path, ".")
		cmd.Dir = abs
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", abs, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// RemoveBinaries deletes every executable BuildBinary built in this test binary. Call it from
// TestMain once m.Run has returned; a later BuildBinary builds afresh.
func RemoveBinaries() {
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
	binaries.dir, binaries.builds = "", nil
}

// Main runs a package's tests and deletes the binaries BuildBinary built for them, then exits
// with the tests' status: a package's whole TestMain is `func TestMain(m *testing.M) {
// draintest.Main(m) }`.
func Main(m interface{ Run() int }) {
	code := m.Run()
	RemoveBinaries()
	os.Exit(code)
}
