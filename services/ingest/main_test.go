package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/internal/servicetest"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

func TestMain(m *testing.M) { draintest.Main(m) }

// binary builds the ingest binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	return draintest.BuildBinary(t, ".")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	addr   string // the bus port, DRAIN_INGEST_ADDR
	admin  string // DRAIN_ADMIN_ADDR
	stderr *bytes.Buffer
	done   chan struct{}
}

// startIngest runs the binary against the private NATS and waits until /readyz is 200.
func startIngest(t *testing.T, natsURL string, env ...string) *proc {
	t.Helper()
	p := &proc{addr: freeAddr(t), admin: freeAddr(t), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t))
	p.cmd.Env = append([]string{"ROUTEMASTER_DRAIN_TOKENS=demo", "NATS_URL=" + natsURL, "DRAIN_PREFIX=rmbin",
		"DRAIN_INGEST_ADDR=" + p.addr, "DRAIN_ADMIN_ADDR=" + p.admin, "PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stderr = &lockedWriter{w: p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("ingest stderr:\n%s", p.stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest not ready: %v\n%s", err, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestHelp(t *testing.T) {
	out, err := exec.Command(binary(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v\n%s", err, out)
	}
	for _, v := range []string{"ROUTEMASTER_DRAIN_TOKENS", "NATS_URL", "DRAIN_PREFIX", "DRAIN_INGEST_ADDR", "DRAIN_INGEST_PATH",
		"DRAIN_INGEST_MAX_BODY", "DRAIN_INGEST_MAX_EVENTS", "DRAIN_INGEST_MAX_INFLIGHT", "DRAIN_INGEST_PUBLISH_TIMEOUT",
		"DRAIN_INGEST_RETRY_AFTER", "DRAIN_INGEST_TLS_CERT", "DRAIN_INGEST_TLS_KEY", "DRAIN_SIPHON_TOPICS", "DRAIN_SHUTDOWN_TIMEOUT",
		"DRAIN_ADMIN_ADDR"} {
		if !strings.Contains(string(out), v) {
			t.Errorf("-h does not list %s", v)
		}
	}
}

func TestVersion(t *testing.T) {
	servicetest.Version(t, binary(t), "ingest")
}

// Started while NATS is down, ingest is live at once on its admin address and its bus port,
// /readyz names what it waits for, a batch gets 503 with Retry-After, and once NATS answers the
// same process takes batches. /metrics is served on the admin address only.
func TestStartsBeforeNATS(t *testing.T) {
	bus := freeAddr(t)
	s := servicetest.StartWithoutDependencies(t, binary(t), "ingest",
		[]string{"ROUTEMASTER_DRAIN_TOKENS=demo", "DRAIN_PREFIX=lifecycle", "DRAIN_INGEST_ADDR=" + bus}, "nats", "streams")
	if code, _ := servicetest.Get(t, "http://"+bus+"/healthz"); code != http.StatusOK {
		t.Errorf("bus port /healthz before NATS = %d, want 200", code)
	}
	if code, _ := servicetest.Get(t, "http://"+bus+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("bus port /readyz before NATS = %d, want 503", code)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+bus+"/events", strings.NewReader(`[{"topic":"a","type":"create","url":"https://a.test/1","t":1}]`))
	req.SetBasicAuth("demo", "x")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a batch before NATS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a batch before NATS = %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	s.StartDependencies(t, 30*time.Second)
	s.WaitHTTP("http://"+bus+"/readyz", http.StatusOK, 10*time.Second)
	if code, _ := servicetest.Get(t, "http://"+bus+"/healthz"); code != http.StatusOK {
		t.Errorf("bus port /healthz = %d", code)
	}
	if code, body := servicetest.Get(t, "http://"+bus+"/metrics"); code != http.StatusNotFound {
		t.Errorf("bus port /metrics = %d %.100s, want 404", code, body)
	}
	if code, body := servicetest.Get(t, s.URL("/metrics")); code != http.StatusOK || !strings.Contains(body, "drain_ingest_inflight_batches") {
		t.Errorf("admin /metrics = %d without the ingest metrics", code)
	}
}

// TestBadConfig: a bad or missing setting exits 2 with one line naming the variable.
func TestBadConfig(t *testing.T) {
	for name, tc := range map[string]struct{ env []string }{
		"ROUTEMASTER_DRAIN_TOKENS":     {[]string{}},
		"DRAIN_INGEST_MAX_BODY":        {[]string{"ROUTEMASTER_DRAIN_TOKENS=demo", "DRAIN_INGEST_MAX_BODY=lots"}},
		"DRAIN_INGEST_PUBLISH_TIMEOUT": {[]string{"ROUTEMASTER_DRAIN_TOKENS=demo", "DRAIN_INGEST_PUBLISH_TIMEOUT=3"}},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(binary(t))
			cmd.Env = tc.env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want 2", err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], name) {
				t.Errorf("stderr %q, want one line naming %s", stderr.String(), name)
			}
		})
	}
}

func postBatch(c *http.Client, addr, body string) (int, error) {
	req, _ := http.NewRequest("POST", "http://"+addr+"/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Basic ZGVtbzp4")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// batch returns a unique 3-topic batch and the Nats-Msg-Ids of the messages it must produce.
func batch(client, n int) (string, []string) {
	var b strings.Builder
	groups := map[string][]string{}
	topics := []string{"orders", "riders", "menus"}
	for i := range 6 {
		topic := topics[i%3]
		ev := fmt.Sprintf(`{"topic":%q,"type":"update","url":"https://x.test/%d/%d/%d","t":%d}`, topic, client, n, i, 1559567869000+n)
		groups[topic] = append(groups[topic], ev)
	}
	b.WriteString("[")
	var ids []string
	first := true
	for i := range 6 {
		topic := topics[i%3]
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(groups[topic][i/3])
	}
	b.WriteString("]")
	for _, topic := range topics {
		subj := "rmbin.events." + topic
		body := "[" + strings.Join(groups[topic], ",") + "]"
		ids = append(ids, stream.MsgID(subj, []byte(body)))
	}
	return b.String(), ids
}

func storedIDs(t *testing.T, js jetstream.JetStream) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "rmbin_events")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ids[m.Header.Get(jetstream.MsgIDHeader)] = true
	}
	return ids
}

// TestSIGKILLLosesNothingAcknowledged kills ingest with SIGKILL while 8 clients post
// concurrently: every batch that got 204 is in the stream.
func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	n := draintest.StartNATS(t)
	_, js := n.Connect(t)
	p := startIngest(t, n.URL())
	var acked sync.Map // client/n → ids
	var count atomic.Int64
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				body, ids := batch(c, i)
				code, err := postBatch(client, p.addr, body)
				if err != nil {
					return // the process is gone
				}
				if code == 204 {
					acked.Store(fmt.Sprint(c, "/", i), ids)
					count.Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for count.Load() < 300 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	<-p.done
	stored := storedIDs(t, js)
	missing, total := 0, 0
	acked.Range(func(k, v any) bool {
		total++
		for _, id := range v.([]string) {
			if !stored[id] {
				missing++
				t.Errorf("batch %v got 204 but message %s is not stored", k, id)
			}
		}
		return missing < 10
	})
	t.Logf("%d batches acknowledged before SIGKILL, %d messages stored, %d missing", total, len(stored), missing)
	if total == 0 {
		t.Fatal("no batch was acknowledged")
	}
}

// TestSIGTERMFinishesInFlight: a request whose body is still arriving when SIGTERM comes is
// completed (204, stored); new connections are refused; the process exits 0.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	n := draintest.StartNATS(t)
	_, js := n.Connect(t)
	p := startIngest(t, n.URL())
	body, ids := batch(0, 0)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ZGVtbzp4\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + p.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "\ndrain_ingest_inflight_batches 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("request never in flight")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", p.addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := io.WriteString(c, body[10:]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if resp.StatusCode != 204 {
		t.Fatalf("in-flight request: %d", resp.StatusCode)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("ingest did not exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	stored := storedIDs(t, js)
	for _, id := range ids {
		if !stored[id] {
			t.Errorf("message %s of the in-flight batch is not stored", id)
		}
	}
	if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged: %s", p.stderr.String())
	}
}
