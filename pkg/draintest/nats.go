package draintest

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is a private JetStream server.
type NATS struct {
	t      testing.TB
	port   int
	dir    string
	binary string
	srv    *server.Server
	cmd    *exec.Cmd
}

// StartNATS starts an embedded JetStream server on a random port with a temporary store.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, port: freePort(t), dir: t.TempDir()}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// StartNATSBinary starts the nats-server executable at path (for example the 2.9 release a
// Linux distribution ships) with JetStream on a random port. The test is skipped when path is
// not executable.
func StartNATSBinary(t testing.TB, path string) *NATS {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("no %s binary: %v", path, err)
	}
	n := &NATS{t: t, port: freePort(t), dir: t.TempDir(), binary: path}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// Port is the server's TCP port; it stays the same across restarts.
func (n *NATS) Port() int { return n.port }

// Start starts the server (again) on its port and store; stored streams survive a restart.
func (n *NATS) Start() {
	n.t.Helper()
	if n.binary != "" {
		n.startBinary()
		return
	}
	opts := &server.Options{
		ServerName: "draintest",
		Host:       "127.0.0.1",
		Port:       n.port,
		JetStream:  true,
		StoreDir:   n.dir,
		NoLog:      true,
		NoSigs:     true,
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		var srv *server.Server
		srv, err = server.NewServer(opts)
		if err != nil {
			break
		}
		go srv.Start()
		if srv.ReadyForConnections(10 * time.Second) {
			n.srv = srv
			return
		}
		srv.Shutdown()
		err = fmt.Errorf("not ready (port %d may still be held)", n.port)
		time.Sleep(100 * time.Millisecond)
	}
	n.t.Fatalf("draintest: start embedded nats-server: %v", err)
}

func (n *NATS) startBinary() {
	cmd := exec.Command(n.binary, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("draintest: start %s: %v", n.binary, err)
	}
	n.cmd = cmd
	waitTCP(n.t, n.port, "nats-server")
	// JetStream answers a little after the port opens.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		nc, err := nats.Connect(n.URL())
		if err == nil {
			js, _ := jetstream.New(nc)
			_, err = js.AccountInfo(contextTimeout(time.Second))
			nc.Close()
			if err == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("draintest: %s did not enable JetStream", n.binary)
}

// Stop shuts the server down (clients see a disconnection). Safe to call twice.
func (n *NATS) Stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
	if n.cmd != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// Restart stops and starts the server on the same port and store.
func (n *NATS) Restart() {
	n.Stop()
	n.Start()
}

// Connect opens a client connection and its JetStream context, closed at cleanup.
func (n *NATS) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
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

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("draintest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitTCP(t testing.TB, port int, what string) {
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
