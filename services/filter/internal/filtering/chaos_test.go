package filtering_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// workload is 10,000 events over 500 URLs with shuffled timestamps, in 100-event batches over
// two topics, and the newest t of each URL.
func workload() (batches [][]ev, topics []string, newest map[string]int64) {
	const urls, perURL, size = 500, 20, 100
	var all []ev
	newest = map[string]int64{}
	for i := range urls {
		u := url(fmt.Sprint("w", i))
		for j := range perURL {
			t := int64(1_000_000 + j*10 + rand.IntN(10))
			all = append(all, ev{"update", u, t})
			newest[u] = max(newest[u], t)
		}
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for i := 0; i < len(all); i += size {
		batches = append(batches, all[i:i+size])
		topics = append(topics, []string{"alpha", "beta"}[len(batches)%2])
	}
	return batches, topics, newest
}

// publishAll publishes the batches from 4 goroutines, pausing pause between two batches of one
// goroutine.
func (e *env) publishAll(batches [][]ev, topics []string, pause time.Duration) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(batches); i += 4 {
				e.publish(topics[i], batches[i]...)
				time.Sleep(pause)
			}
		})
	}
	wg.Wait()
}

// checkInvariants: the state of every URL is its newest t; its newest event was handed on;
// no (url, t) was handed on twice; every URL is dirty; nothing was dead-lettered.
func (e *env) checkInvariants(newest map[string]int64) {
	e.t.Helper()
	handed := map[string]int{}
	for _, m := range e.changed() {
		for _, ev := range m.Events {
			handed[fmt.Sprintf("%s@%d", ev.URL, ev.T)]++
		}
	}
	for k, n := range handed {
		if n > 1 {
			e.t.Errorf("%s handed on %d times", k, n)
		}
	}
	dirty := e.dirty()
	for u, t := range newest {
		if st := e.state(u); st != t {
			e.t.Errorf("%s: state %d, want %d", u, st, t)
		}
		if handed[fmt.Sprintf("%s@%d", u, t)] != 1 {
			e.t.Errorf("%s: newest event @%d never handed on", u, t)
		}
		if !dirty[u] {
			e.t.Errorf("%s not dirty", u)
		}
	}
	if len(dirty) != len(newest) {
		e.t.Errorf("dirty set has %d URLs, want %d", len(dirty), len(newest))
	}
	if dl := e.messages("dlq"); len(dl) != 0 {
		e.t.Errorf("%d dead letters", len(dl))
	}
}

func TestTwoFiltersOnOneConsumer(t *testing.T) {
	e := newEnv(t)
	a, b := e.startFilter(), e.startFilter()
	batches, topics, newest := workload()
	e.publishAll(batches, topics, 0)
	e.waitDone(60 * time.Second)
	e.checkInvariants(newest)
	if n := a.counter("drain_filter_newly_dirty_total") + b.counter("drain_filter_newly_dirty_total"); n != float64(len(newest)) {
		t.Errorf("URLs newly dirtied %v times in all, want %d (once each)", n, len(newest))
	}
	if a.counter("drain_filter_events_in_total") == 0 || b.counter("drain_filter_events_in_total") == 0 {
		t.Logf("one instance got no work: a=%v b=%v", a.counter("drain_filter_events_in_total"), b.counter("drain_filter_events_in_total"))
	}
}

// TestRedisDownHoldsMessages: with the drain Redis down the messages wait, for many more
// deliveries than DRAIN_MAX_DELIVER, and none is dead-lettered (stream.Transient).
func TestRedisDownHoldsMessages(t *testing.T) {
	e := newEnv(t, "DRAIN_RETRY_BACKOFF_MAX=2s", "DRAIN_MAX_DELIVER=2")
	e.startFilter()
	batches, topics, newest := workload()
	half := len(batches) / 2
	e.publishAll(batches[:half], topics[:half], 0)
	e.waitDone(30 * time.Second)

	e.redis.Stop()
	down := time.Now()
	e.publishAll(batches[half:], topics[half:], 0)
	before := len(e.changed())
	// While Redis is down nothing moves on and nothing is dropped: the messages stay unacked.
	time.Sleep(2 * time.Second)
	cons, err := e.js.Consumer(context.Background(), "ft_events", "ft_filter")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if held := info.NumAckPending + int(info.NumPending); held != len(batches)-half {
		t.Errorf("%d messages held while Redis is down, want %d", held, len(batches)-half)
	}
	if n := len(e.changed()); n != before {
		t.Errorf("changed grew from %d to %d with Redis down", before, n)
	}
	time.Sleep(10*time.Second - time.Since(down))
	e.redis.Start()
	e.waitDone(60 * time.Second)
	e.checkInvariants(newest)
	if dl := e.messages(stream.DLQ); len(dl) != 0 {
		t.Errorf("%d messages dead-lettered during the outage, e.g. %v", len(dl), dl[0].Header.Get(stream.HeaderError))
	}
}

// TestSIGKILL kills the real binary at random moments while batches flow, restarting it each
// time; the invariants hold once a last instance has finished, and SIGTERM then exits cleanly.
func TestSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := draintest.BuildBinary(t, "../..")
	e := newEnv(t)
	logs := filepath.Join(t.TempDir(), "filter.log")
	logf, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := func(extra ...string) *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = append(append(os.Environ(), e.env...), extra...)
		cmd.Stderr = logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	batches, topics, newest := workload()
	published := make(chan struct{})
	go func() {
		defer close(published)
		e.publishAll(batches, topics, 100*time.Millisecond)
	}()
	kills := 0
	cmd := start()
	for flowing := true; flowing || kills < 5; {
		time.Sleep(time.Duration(150+rand.IntN(450)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		kills++
		select {
		case <-published:
			flowing = false
		default:
		}
		if flowing || kills < 5 {
			cmd = start()
		}
	}
	t.Logf("%d kills", kills)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := ln.Addr().String()
	ln.Close()
	cmd = start("DRAIN_ADMIN_ADDR=" + admin)
	e.waitDone(90 * time.Second)
	e.checkInvariants(newest)

	// The last instance's admin endpoints.
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`, "/metrics": "drain_filter_events_in_total"} {
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %.200s", path, resp.StatusCode, b)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("SIGTERM: %v (log %s)", err, logs)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Error("no exit within 30s of SIGTERM")
	}
}
