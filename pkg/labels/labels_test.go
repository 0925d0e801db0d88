package labels

import (
	"fmt"
	"sync"
	"testing"
)

func TestBounded(t *testing.T) {
	b := NewBounded(2, "other", "configured.example")
	if got := b.Existing("a"); got != "other" {
		t.Fatalf("Existing of an unseen value = %q", got)
	}
	for _, tc := range []struct{ v, want string }{
		{"configured.example", "configured.example"}, {"a", "a"}, {"b", "b"}, {"c", "other"}, {"a", "a"},
	} {
		if got := b.Admit(tc.v); got != tc.want {
			t.Errorf("Admit(%q) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if got := b.Existing("b"); got != "b" {
		t.Errorf("Existing of an admitted value = %q", got)
	}
}

// However many goroutines admit however many values, at most max get their own label.
func TestBoundedConcurrent(t *testing.T) {
	b := NewBounded(100, "other")
	own := sync.Map{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if l := b.Admit(fmt.Sprintf("h%d-%d", g, i)); l != "other" {
					own.Store(l, true)
				}
			}
		})
	}
	wg.Wait()
	n := 0
	own.Range(func(_, _ any) bool { n++; return true })
	if n != 100 {
		t.Fatalf("%d values got their own label, want 100", n)
	}
}
