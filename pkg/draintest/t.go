package draintest

import (
	"fmt"
	"os"
	"slices"
)

// T is the part of testing.TB that the server helpers use, so that *testing.T, *testing.B and
// an Example's *Scope can all start servers.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Scope is a T for code without a testing.TB, such as an Example function or a small program:
// a failure panics with its message, and Close runs the cleanups (newest first) and removes
// the temporary directories.
//
//	s := draintest.NewScope()
//	defer s.Close()
//	redis := draintest.StartRedis(s)
type Scope struct {
	cleanups []func()
}

// NewScope returns an empty Scope.
func NewScope() *Scope { return &Scope{} }

// Helper does nothing; it is there to satisfy T.
func (*Scope) Helper() {}

// Fatalf panics with the message.
func (*Scope) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// Skipf panics with the message: a Scope has no way to skip.
func (*Scope) Skipf(format string, args ...any) { panic("skip: " + fmt.Sprintf(format, args...)) }

// Cleanup registers f to run at Close.
func (s *Scope) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

// TempDir creates a new temporary directory, removed at Close.
func (s *Scope) TempDir() string {
	dir, err := os.MkdirTemp("", "draintest-")
	if err != nil {
		s.Fatalf("draintest: temp dir: %v", err)
	}
	s.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Close runs the registered cleanups, newest first.
func (s *Scope) Close() {
	for _, f := range slices.Backward(s.cleanups) {
		f()
	}
	s.cleanups = nil
}
