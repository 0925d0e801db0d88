package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	draintest.RemoveBinaries()
	os.Exit(code)
}

// pipeline is the four service binaries running as processes against private NATS and Redis
// servers, with an origin on 127.0.0.1 whose requests the test can read.
type pipeline struct {
	NATS  *draintest.NATS
	Redis *draintest.Redis
	// Origin serves every GET with a small JSON body and records the requests.
	Origin *httptest.Server
	// Bus is ingest's bus URL (DRAIN_INGEST_ADDR + /events).
	Bus string
	// Admin maps a service name to its admin address (DRAIN_ADMIN_ADDR) on 127.0.0.1.
	Admin    map[string]string
	Services map[string]*draintest.Process

	mu       sync.Mutex
	requests []*http.Request
}

// pipelineServices are the service binaries, in the order they start.
var pipelineServices = []string{"ingest", "filter", "warmer", "sweeper"}

// startPipeline builds and starts ingest, filter (cache mode warm), warmer and sweeper (every
// 500ms) with env added to each one's environment, and waits until every /readyz answers 200.
func startPipeline(t *testing.T, env ...string) *pipeline {
	t.Helper()
	p := &pipeline{NATS: draintest.StartNATS(t), Redis: draintest.StartRedis(t),
		Admin: map[string]string{}, Services: map[string]*draintest.Process{}}
	p.Origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Clone(r.Context()))
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(p.Origin.Close)
	common := []string{
		"NATS_URL=" + p.NATS.URL(), "ROUTEMASTER_DRAIN_REDIS=" + p.Redis.URL(0, "e2e"),
		"DRAIN_PREFIX=e2e", "DRAIN_STREAM_STORAGE=memory", "DRAIN_SHUTDOWN_TIMEOUT=5s",
	}
	own := map[string][]string{
		"ingest":  {"ROUTEMASTER_DRAIN_TOKENS=e2e-token"},
		"filter":  {"DRAIN_CACHE_MODE=warm", "DRAIN_CONCURRENCY=4"},
		"warmer":  {"DRAIN_CONCURRENCY=4", "DRAIN_WARM_COALESCE=10ms"},
		"sweeper": {"DRAIN_SWEEP_INTERVAL=500ms"},
	}
	var ingestAddr string
	for _, name := range pipelineServices {
		bin := draintest.BuildBinary(t, "../services/"+name)
		p.Admin[name] = draintest.FreeAddr(t)
		e := append(slices.Concat(common, own[name], env), "DRAIN_ADMIN_ADDR="+p.Admin[name])
		if name == "ingest" {
			ingestAddr = draintest.FreeAddr(t)
			e = append(e, "DRAIN_INGEST_ADDR="+ingestAddr)
		}
		p.Services[name] = draintest.StartProcess(t, bin, e)
	}
	for _, name := range pipelineServices {
		p.Services[name].WaitHTTP("http://"+p.Admin[name]+"/readyz", http.StatusOK, 60*time.Second)
	}
	p.Bus = "http://" + ingestAddr + "/events"
	return p
}

// post sends body to ingest's bus path with the pipeline's token and header (name, value
// pairs) and fails t unless ingest answers 204.
func (p *pipeline) post(t *testing.T, body string, header ...string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.Bus, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("e2e-token", "")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s = %d %s", p.Bus, resp.StatusCode, b)
	}
}

// originRequests returns the requests the origin has received so far.
func (p *pipeline) originRequests() []*http.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// originURL is the URL of path on the origin.
func (p *pipeline) originURL(path string) string {
	host, port, _ := net.SplitHostPort(p.Origin.Listener.Addr().String())
	return "http://" + net.JoinHostPort(host, port) + path
}

// scrape returns the body of a service's /metrics.
func (p *pipeline) scrape(t *testing.T, service string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.Admin[service] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /metrics = %d %v", service, resp.StatusCode, err)
	}
	return string(b)
}
