package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// TestDockerfile lints deploy/Dockerfile with BuildKit's own parser and rules (the checks
// `docker build --check` runs) and asserts what the images promise: a multi-stage build of a
// static binary, a minimal base, a non-root user and the health probe.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ast, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, w := range ast.Warnings {
		t.Errorf("parser warning: %s", w.Short)
	}
	var lint []string
	lr := linter.New(&linter.Config{ExperimentalAll: true, Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		lint = append(lint, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	stages, _, err := instructions.Parse(ast.AST, lr)
	if err != nil {
		t.Fatalf("instructions: %v", err)
	}
	for _, l := range lint {
		t.Errorf("lint: %s", l)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stage(s), want a multi-stage build", len(stages))
	}

	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.BaseName, "golang:") {
		t.Errorf("build stage FROM %s, want a golang image", build.BaseName)
	}
	if !slices.Contains([]string{"scratch"}, final.BaseName) && !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s, want scratch or distroless/static", final.BaseName)
	}

	env := map[string]string{}
	var runs []string
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env[kv.Key] = kv.Value
			}
		case *instructions.RunCommand:
			runs = append(runs, strings.Join(c.CmdLine, " "))
		case *instructions.CopyCommand:
			for _, src := range c.SourcePaths {
				if src == "." {
					continue
				}
				if m, _ := filepath.Glob(filepath.Join("..", src)); len(m) == 0 {
					t.Errorf("COPY %s: nothing in the repository matches", src)
				}
			}
		}
	}
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("build stage CGO_ENABLED = %q, want 0 (static binary for distroless/static)", env["CGO_ENABLED"])
	}
	if joined := strings.Join(runs, "\n"); !strings.Contains(joined, "go build") || !strings.Contains(joined, "./cmd/healthcheck") {
		t.Errorf("build stage does not build the service and the health probe:\n%s", joined)
	}

	var user string
	var entry []string
	var copied []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			if c.PrependShell {
				t.Errorf("ENTRYPOINT uses the shell form; distroless has no shell")
			}
			entry = c.CmdLine
		case *instructions.CopyCommand:
			if c.From == "" {
				t.Errorf("final stage copies from the build context: %v", c.SourcePaths)
			}
			copied = append(copied, c.DestPath)
		case *instructions.RunCommand:
			t.Errorf("final stage runs %v; distroless has no shell", c.CmdLine)
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("final USER = %q, want a non-root user", user)
	}
	if !slices.Equal(entry, []string{"/drain"}) {
		t.Errorf("ENTRYPOINT = %q, want [/drain]", entry)
	}
	for _, want := range []string{"/drain", "/healthcheck"} {
		if !slices.Contains(copied, want) {
			t.Errorf("final stage does not copy %s (copies %v)", want, copied)
		}
	}
}
