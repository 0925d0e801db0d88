package stack

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an embedded JetStream server on a fixed port with a file store, so Restart keeps
// every stream and consumer.
type NATS struct {
	Port int
	Dir  string
	srv  *server.Server
}

// StartNATS starts a JetStream server on 127.0.0.1:port storing in dir.
func StartNATS(port int, dir string) (*NATS, error) {
	n := &NATS{Port: port, Dir: dir}
	return n, n.Start()
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.Port) }

// Start starts the server (again). It retries while the port is still held by the previous
// instance.
func (n *NATS) Start() error {
	opts := &server.Options{
		ServerName: "drain-local",
		Host:       "127.0.0.1",
		Port:       n.Port,
		JetStream:  true,
		StoreDir:   n.Dir,
		NoLog:      true,
		NoSigs:     true,
	}
	var err error
	for range 50 {
		var srv *server.Server
		srv, err = server.NewServer(opts)
		if err != nil {
			return fmt.Errorf("nats-server: %w", err)
		}
		go srv.Start()
		if srv.ReadyForConnections(10 * time.Second) {
			n.srv = srv
			return nil
		}
		srv.Shutdown()
		err = fmt.Errorf("nats-server not ready on port %d", n.Port)
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Stop shuts the server down; clients see a disconnection. Safe to call twice.
func (n *NATS) Stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// Restart stops the server and starts it again on the same port and store.
func (n *NATS) Restart() error {
	n.Stop()
	return n.Start()
}
