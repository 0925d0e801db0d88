package draintest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is a private JetStream server: a nats-server process on a random loopback port with a
// temporary store, so a test can kill it (SIGKILL, as a crash) and start it again on the same
// port and store.
type NATS struct {
	t      T
	port   int
	dir    string
	binary string
	name   string // server name within a cluster ("" for a single server)
	conf   string // configuration file (cluster nodes), instead of flags
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been reaped
}

// StartNATS starts the current nats-server (see NATSServerBinary) with JetStream on a random
// port and a temporary store, stopped at cleanup.
func StartNATS(t T) *NATS {
	t.Helper()
	return StartNATSBinary(t, NATSServerBinary(t))
}

// StartNATSBinary starts the nats-server executable at path (for example the 2.9 release a
// Linux distribution ships, "nats-server" from PATH) with JetStream on a random port. The test
// is skipped when path is not executable.
func StartNATSBinary(t T, path string) *NATS {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("no %s binary: %v", path, err)
	}
	n := &NATS{t: t, port: FreePort(t), dir: t.TempDir(), binary: path}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// NATSOptions are server settings for StartNATSWith; the zero value is the server's defaults.
type NATSOptions struct {
	// MaxPayload is the server's max_payload, the largest message (headers and body) a client
	// may publish, in bytes (0: the server's default, 1 MiB).
	MaxPayload int
}

// StartNATSWith is StartNATS with server settings, written to a configuration file in the
// server's directory; they hold across restarts.
func StartNATSWith(t T, o NATSOptions) *NATS {
	t.Helper()
	bin := NATSServerBinary(t)
	n := &NATS{t: t, port: FreePort(t), dir: t.TempDir(), binary: bin}
	body := fmt.Sprintf("listen: 127.0.0.1:%d\njetstream { store_dir: %q }\n", n.port, n.dir)
	if o.MaxPayload > 0 {
		body += fmt.Sprintf("max_payload: %d\n", o.MaxPayload)
	}
	n.conf = filepath.Join(n.dir, "server.conf")
	if err := os.WriteFile(n.conf, []byte(body), 0o644); err != nil {
		t.Fatalf("draintest: %v", err)
	}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// Port is the server's TCP port; it stays the same across restarts.
func (n *NATS) Port() int { return n.port }

// Name is the server's name in its cluster ("n0", "n1", ...; "" for a single server).
func (n *NATS) Name() string { return n.name }

// Start starts the server (again) on its port and store; stored streams survive a restart.
// It returns once JetStream answers.
func (n *NATS) Start() {
	n.t.Helper()
	var err error
	// A port freed a moment ago (a restart) can still be held by the kernel: try again briefly.
	for attempt := 0; attempt < 20; attempt++ {
		if err = n.launchOnce(); err == nil {
			if err = n.awaitJetStream(); err == nil {
				return
			}
			n.Kill()
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.t.Fatalf("draintest: start %s: %v", n.binary, err)
}

// launch starts the process without waiting for JetStream (cluster nodes answer only once a
// quorum is up), failing the test if it cannot be started.
func (n *NATS) launch() {
	n.t.Helper()
	if err := n.launchOnce(); err != nil {
		n.t.Fatalf("draintest: start %s: %v", n.binary, err)
	}
}

// waitReady waits for a launched server's JetStream, failing the test after 15 s.
func (n *NATS) waitReady() {
	n.t.Helper()
	if err := n.awaitJetStream(); err != nil {
		n.t.Fatalf("draintest: %s %s: %v", n.binary, n.name, err)
	}
}

func (n *NATS) launchOnce() error {
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir}
	if n.conf != "" {
		args = []string{"-c", n.conf}
	}
	cmd := exec.Command(n.binary, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.cmd, n.exited = cmd, exited
	return nil
}

func (n *NATS) awaitJetStream() error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			n.cmd = nil
			return fmt.Errorf("exited at start (port %d may still be held)", n.port)
		default:
		}
		if jetStreamAnswers(n.URL()) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("JetStream did not answer on port %d within 15 s", n.port)
}

func jetStreamAnswers(url string) bool {
	nc, err := nats.Connect(url, nats.Timeout(200*time.Millisecond))
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// Stop shuts the server down gracefully (SIGTERM, as an orderly restart) and waits for it.
// Safe to call twice.
func (n *NATS) Stop() { n.signal(syscall.SIGTERM) }

// Kill kills the server with SIGKILL, as a crash, and waits for it. Safe to call twice.
func (n *NATS) Kill() { n.signal(syscall.SIGKILL) }

func (n *NATS) signal(sig syscall.Signal) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
	n.cmd = nil
}

// Restart stops and starts the server on the same port and store.
func (n *NATS) Restart() {
	n.Stop()
	n.Start()
}

// Connect opens a client connection and its JetStream context, closed at cleanup.
func (n *NATS) Connect(t T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("draintest: connect to %s: %v", n.URL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("draintest: jetstream: %v", err)
	}
	return nc, js
}

// StoreDir is the server's JetStream store directory.
func (n *NATS) StoreDir() string { return filepath.Clean(n.dir) }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("draintest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitTCP(t T, port int, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("draintest: %s did not listen on port %d", what, port)
}

// FreeAddr returns a 127.0.0.1:port address that was free a moment ago.
func FreeAddr(t T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}
