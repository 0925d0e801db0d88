package warming

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/draintest"
)

func TestMain(m *testing.M) { draintest.Main(m) }

type proc struct {
	t   *testing.T
	bin string
	env []string
	cmd *exec.Cmd
}

func (p *proc) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	p.t.Cleanup(p.kill)
}

func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_, _ = p.cmd.Process.Wait()
		p.cmd = nil
	}
}

// Two warmer processes are killed with SIGKILL while fetches from a slow origin are in flight,
// more events arrive while they are down, and they restart. At quiescence every URL whose
// newest event is create/update holds the origin's current version, deleted ones hold nothing,
// nothing is pending and nothing was dead-lettered.
func TestCrashMidFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	bin := draintest.BuildBinary(t, "../..")
	w := newWorld(t)
	env := append(append([]string{}, w.env...), "DRAIN_ACK_WAIT=2s", "DRAIN_CONCURRENCY=4")
	procs := []*proc{{t: t, bin: bin, env: env}, {t: t, bin: bin, env: env}}
	for _, p := range procs {
		p.start()
	}

	const n = 60
	newest := map[string]string{}
	ev := func(path, typ string) {
		w.event(path, typ)
		newest[path] = typ
	}
	w.api.delay.Store(int64(300 * time.Millisecond))
	for i := range n {
		ev(fmt.Sprintf("/k/%d", i), cache.WarmCreate)
	}
	for i := 0; i < n; i += 3 {
		ev(fmt.Sprintf("/k/%d", i), cache.WarmUpdate)
	}
	for i := 1; i < n; i += 5 {
		ev(fmt.Sprintf("/k/%d", i), cache.WarmDelete)
	}
	eventually(t, 20*time.Second, "fetches in flight", func() bool { return w.api.total.Load() >= 6 })
	for _, p := range procs {
		p.kill()
	}
	t.Logf("killed with %d origin requests made", w.api.total.Load())

	// Events keep coming while the warmers are down.
	for i := 0; i < n; i += 4 {
		ev(fmt.Sprintf("/k/%d", i), cache.WarmUpdate)
	}
	for i := 2; i < n; i += 7 {
		ev(fmt.Sprintf("/k/%d", i), cache.WarmDelete)
	}
	ev("/k/1", cache.WarmCreate) // deleted earlier, created again

	w.api.delay.Store(int64(20 * time.Millisecond))
	for _, p := range procs {
		p.start()
	}
	w.quiet(90 * time.Second)

	for path, typ := range newest {
		if typ == cache.WarmDelete {
			if w.storedAnything(path) {
				t.Errorf("%s: deleted but a variant is stored", path)
			}
			continue
		}
		if got, want := w.cached(path), w.api.body(path); got != want {
			t.Errorf("%s (newest %s): cached %q, origin has %q", path, typ, got, want)
		}
	}
	if d := w.deadLetters(); d != 0 {
		t.Fatalf("%d dead letters", d)
	}
}
