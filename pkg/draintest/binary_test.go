package draintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildBinary builds a tiny main package twice: the second call returns the same,
// runnable executable without building again, and RemoveBinaries deletes it.
func TestBuildBinary(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":  "module hello\n\ngo 1.26.0\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Print(\"hello\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GOWORK", "off")
	bin := BuildBinary(t, dir)
	if filepath.Base(bin) != filepath.Base(dir) {
		t.Errorf("binary %s not named after its package directory %s", bin, dir)
	}
	info, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if again := BuildBinary(t, dir); again != bin {
		t.Errorf("second build at %s, want the cached %s", again, bin)
	}
	if info2, err := os.Stat(bin); err != nil || !info2.ModTime().Equal(info.ModTime()) {
		t.Errorf("binary rebuilt or gone on the second call: %v", err)
	}
	out, err := exec.Command(bin).Output()
	if err != nil || string(out) != "hello" {
		t.Fatalf("run: %q %v", out, err)
	}
	RemoveBinaries()
	if _, err := os.Stat(bin); !os.IsNotExist(err) {
		t.Errorf("%s still there after RemoveBinaries: %v", bin, err)
	}
}

// TestBuildBinaryError: a package that does not compile fails the test with go build's output.
func TestBuildBinaryError(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module broken\n\ngo 1.26.0\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { undefinedName() }\n"), 0o644)
	t.Setenv("GOWORK", "off")
	defer RemoveBinaries()
	ft := &fatalT{TB: t}
	func() {
		defer func() { _ = recover() }()
		BuildBinary(ft, dir)
	}()
	if !strings.Contains(ft.msg, "undefinedName") {
		t.Errorf("build error %q does not show the compiler's message", ft.msg)
	}
}

// fatalT records Fatal instead of ending the test.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic("fatal")
}

func (f *fatalT) Helper() {}
