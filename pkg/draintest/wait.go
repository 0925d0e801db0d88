package draintest

import (
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Eventually polls cond every 20 ms until it holds, and fails the test with what when timeout
// passes first.
func Eventually(t T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logger returns a JSON slog logger at level that writes each record through t.Log, so a
// test's log lines appear with its own output (and only when it fails, or with -v). Records
// written after the test ends are dropped.
func Logger(t interface {
	T
	Log(args ...any)
}, level slog.Level) *slog.Logger {
	w := &testWriter{log: t.Log}
	t.Cleanup(w.close)
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	log  func(args ...any)
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
