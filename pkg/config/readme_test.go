package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestREADMEListsEveryVariable keeps the README's configuration table true: every variable
// the code reads is documented there with its default, secret ones marked *secret* (they
// may come from <NAME>_FILE).
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skipf("README not found: %v", err)
	}
	readme := string(b)
	for _, v := range append(slices.Clone(Vars), OTELVars...) {
		row := "| `" + v.Name + "` | "
		i := strings.Index(readme, row)
		if i < 0 {
			t.Errorf("README has no row for %s", v.Name)
			continue
		}
		if v.Default != "" && !strings.HasPrefix(readme[i+len(row):], "`"+v.Default+"`") {
			t.Errorf("README row of %s does not show the default %q", v.Name, v.Default)
		}
		line, _, _ := strings.Cut(readme[i:], "\n")
		if v.Secret != strings.Contains(line, "*secret*") {
			t.Errorf("README row of %s and the variable disagree on *secret* (secret: %v)", v.Name, v.Secret)
		}
	}
}
