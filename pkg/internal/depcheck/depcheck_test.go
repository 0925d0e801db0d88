package depcheck

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// libraries are the packages an app imports to build on the drain.
var libraries = []string{"./event", "./stream", "./dirty", "./cache", "./apiclient", "./reorder", "./replication"}

const module = "github.com/routemaster-drain/drain/pkg"

// forbidden are our packages that read the environment (or exist to): config maps the
// environment onto the libraries' Options, draintest reads DRAIN_TEST_* and starts servers.
var forbidden = map[string]bool{
	module + "/config":    true,
	module + "/draintest": true,
}

// envReaders are the functions that read the process environment, by package.
var envReaders = map[string]map[string]bool{
	"os":      {"Getenv": true, "LookupEnv": true, "Environ": true, "ExpandEnv": true},
	"syscall": {"Getenv": true, "Environ": true},
}

// TestLibrariesDoNotReadTheEnvironment fails when a library package depends, directly or
// not, on pkg/config or on any package of ours that reads the environment.
func TestLibrariesDoNotReadTheEnvironment(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	root, err := filepath.Abs("../..") // the pkg module
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"list", "-deps", "-f", `{{.ImportPath}}|{{.Dir}}|{{join .GoFiles ","}}|{{join .Imports ","}}`}, libraries...)
	cmd := exec.Command(goBin, args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "|", 4)
		if len(parts) != 4 {
			t.Fatalf("go list: unexpected line %q", sc.Text())
		}
		path, dir, files := parts[0], parts[1], parts[2]
		if path != module && !strings.HasPrefix(path, module+"/") {
			continue
		}
		seen++
		if forbidden[path] {
			t.Errorf("%s is in the dependencies of the library packages (imported by %s): only pkg/config, the composition root, may map the environment onto their Options",
				path, importers(out, path))
			continue
		}
		for _, f := range strings.Split(files, ",") {
			if f == "" {
				continue
			}
			for _, call := range envCalls(t, filepath.Join(dir, f)) {
				t.Errorf("%s reads the environment (%s): library packages take everything through their Options", call.pos, call.name)
			}
		}
	}
	if seen < len(libraries) {
		t.Fatalf("go list listed %d packages of %s, want at least the %d libraries:\n%s", seen, module, len(libraries), out)
	}
}

// importers returns the packages of the go list output that import path directly.
func importers(out []byte, path string) string {
	var by []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "|", 4)
		if len(parts) == 4 {
			for _, imp := range strings.Split(parts[3], ",") {
				if imp == path {
					by = append(by, parts[0])
				}
			}
		}
	}
	return strings.Join(by, ", ")
}

type envCall struct{ pos, name string }

// envCalls returns the calls of file to a function of envReaders.
func envCalls(t *testing.T, file string) []envCall {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{} // local name -> import path, for the packages of envReaders
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if envReaders[p] == nil {
			continue
		}
		name := filepath.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = p
	}
	var calls []envCall
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && envReaders[names[x.Name]][sel.Sel.Name] {
			calls = append(calls, envCall{pos: fset.Position(sel.Pos()).String(), name: names[x.Name] + "." + sel.Sel.Name})
		}
		return true
	})
	return calls
}
