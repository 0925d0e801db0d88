package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goCmd runs the go command in dir outside any workspace (GOWORK=off), as an app's own build
// does, and returns its output.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

func checkout(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// testOnly names the modules that only tests may bring: none of them may reach an app.
var testOnly = regexp.MustCompile(`(?m)(testcontainers|github\.com/moby/|github\.com/docker/|nats-server)`)

// serviceOnly names the modules the services add to trace (the OpenTelemetry SDK, its
// exporters and gRPC): the library uses the API only, so none of them may reach an app.
var serviceOnly = regexp.MustCompile(`(?m)(go\.opentelemetry\.io/otel/sdk|go\.opentelemetry\.io/otel/exporters|go\.opentelemetry\.io/proto|google\.golang\.org/grpc)`)

// An app module outside the repository requires the library with one require and one replace
// (pointing at this checkout), builds with GOWORK=off, and its module graph names no
// test-only module. It configures every package with the package's own Options, without
// pkg/config, which its build does not include.
func TestAppModuleRequiresOnlyTheLibrary(t *testing.T) {
	app := t.TempDir()
	gomod := "module example.com/app\n\ngo 1.26.0\n\n" +
		"require github.com/routemaster-drain/drain/pkg v0.0.0-00010101000000-000000000000\n\n" +
		"replace github.com/routemaster-drain/drain/pkg => " + filepath.Join(checkout(t), "pkg") + "\n"
	main := `package main

import (
	"fmt"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/stream"
)

func main() {
	fmt.Println(event.Update, stream.Events, dirty.ErrLeaseLost, cache.ErrRedis, apiclient.ErrCircuitOpen, reorder.ErrInvalidBatch)
	c, err := apiclient.New(apiclient.Options{UserAgent: "app"})
	fmt.Println(c != nil, err, stream.StreamOptions{}.Names().Prefix, stream.ConnectOptions{}.URL,
		cache.Options{}.Expiry, dirty.Options{}.LeaseTTL, reorder.Options{}.TTL)
}
`
	for name, body := range map[string]string{"go.mod": gomod, "main.go": main} {
		if err := os.WriteFile(filepath.Join(app, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goCmd(t, app, "mod", "tidy")
	goCmd(t, app, "build", "-o", filepath.Join(t.TempDir(), "app"), ".")
	if deps := goCmd(t, app, "list", "-deps", "."); strings.Contains(deps, "github.com/routemaster-drain/drain/pkg/config\n") {
		t.Errorf("the app's build includes pkg/config:\n%s", deps)
	}
	graph := goCmd(t, app, "mod", "graph")
	if m := testOnly.FindAllString(graph, 5); len(m) > 0 {
		t.Fatalf("the app's module graph names test-only modules %q:\n%s", m, graph)
	}
	if m := serviceOnly.FindAllString(graph, 5); len(m) > 0 {
		t.Fatalf("the app's module graph names the services' tracing SDK or exporters %q (the library uses the OpenTelemetry API only):\n%s", m, graph)
	}
	sum, err := os.ReadFile(filepath.Join(app, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if m := testOnly.FindAllString(string(sum), 5); len(m) > 0 {
		t.Fatalf("the app's go.sum names test-only modules %q", m)
	}
}

// Every program under examples/ is a module of its own that builds, vets and passes its tests
// outside the workspace, as an app would.
func TestExamplesBuildOutsideTheWorkspace(t *testing.T) {
	mods, err := filepath.Glob(filepath.Join(checkout(t), "examples", "*", "go.mod"))
	if err != nil || len(mods) == 0 {
		t.Fatalf("no example modules (%v)", err)
	}
	for _, m := range mods {
		dir := filepath.Dir(m)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			goCmd(t, dir, "vet", "./...")
			goCmd(t, dir, "test", "-count=1", "./...")
		})
	}
}
