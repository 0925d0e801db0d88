package draintest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSCluster is a JetStream cluster of nats-server processes joined by routes on loopback,
// each with its own store, so that streams can have 3 or 5 replicas and a test can kill the
// stream leader (or any node) and start it again.
type NATSCluster struct {
	// Nodes are the servers, in start order; Nodes[i].Name() is "n<i>".
	Nodes []*NATS
}

// StartNATSCluster starts size nats-server processes (NATSServerBinary) forming one JetStream
// cluster named "draintest" and returns once every node answers JetStream requests and the
// cluster has a meta leader. It stops them at cleanup.
func StartNATSCluster(t T, size int) *NATSCluster {
	t.Helper()
	bin := NATSServerBinary(t)
	clientPorts := make([]int, size)
	routePorts := make([]int, size)
	for i := range size {
		clientPorts[i], routePorts[i] = FreePort(t), FreePort(t)
	}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
	}
	c := &NATSCluster{}
	for i := range size {
		dir := t.TempDir()
		conf := filepath.Join(dir, "server.conf")
		body := fmt.Sprintf("server_name: n%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: %q }\n"+
			"cluster { name: draintest, listen: 127.0.0.1:%d, routes: [%s] }\n",
			i, clientPorts[i], filepath.Join(dir, "js"), routePorts[i], strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatalf("draintest: %v", err)
		}
		c.Nodes = append(c.Nodes, &NATS{t: t, port: clientPorts[i], dir: dir, binary: bin, name: "n" + strconv.Itoa(i), conf: conf})
	}
	// A node's JetStream answers only once a quorum of the cluster is up: start all, then wait.
	for _, n := range c.Nodes {
		n.launch()
		t.Cleanup(n.Stop)
	}
	for _, n := range c.Nodes {
		n.waitReady()
	}
	return c
}

// URLs is every node's client URL, comma-separated, as NATS_URL takes them.
func (c *NATSCluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// Node returns the node whose server name is name ("n0", "n1", ...), or nil.
func (c *NATSCluster) Node(name string) *NATS {
	for _, n := range c.Nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// StreamLeader returns the node that leads stream (asked through any live node), waiting up
// to 10 s for the stream to have a leader.
func (c *NATSCluster) StreamLeader(t T, stream string) *NATS {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if n.cmd == nil {
				continue
			}
			leader, err := streamLeader(n.URL(), stream)
			if err == nil && leader != "" {
				if node := c.Node(leader); node != nil {
					return node
				}
			}
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("draintest: no leader for stream %s: %v", stream, last)
	return nil
}

func streamLeader(url, stream string) (string, error) {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil {
		return "", fmt.Errorf("stream %s has no cluster info", stream)
	}
	return info.Cluster.Leader, nil
}
