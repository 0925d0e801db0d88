package receiver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/ingest/internal/receiver"
)

const prefix = "rmt"

// env is an ingest server in-process (httptest) in front of a private JetStream server.
type env struct {
	nats  *draintest.NATS
	nc    *nats.Conn          // the server's connection (stream.Connect, as in production)
	js    jetstream.JetStream // the test's own connection, to look into the streams
	srv   *receiver.Server
	http  *httptest.Server
	cfg   *config.Config
	reg   *prometheus.Registry
	logs  *draintest.Buffer
	names stream.Names
}

// start runs ingest with the given configuration overrides ("KEY=value") and, unless
// undeclared is set, the drain's streams declared.
func start(t testing.TB, overrides ...string) *env {
	t.Helper()
	return startOn(t, draintest.StartNATS(t), overrides...)
}

// startOn is start in front of a server of the test's choice.
func startOn(t testing.TB, srv *draintest.NATS, overrides ...string) *env {
	t.Helper()
	e := &env{nats: srv, logs: &draintest.Buffer{}}
	vars := append([]string{"ROUTEMASTER_DRAIN_TOKENS=demo, other ,", "DRAIN_PREFIX=" + prefix, "NATS_URL=" + e.nats.URL(), "DRAIN_LOG_LEVEL=debug"}, overrides...)
	e.cfg = config.Default(config.Ingest, vars...)
	e.names = e.cfg.Streams.Names()
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conn := e.cfg.NATS
	conn.Name, conn.Log = "ingest-test", log
	nc, js, err := stream.Connect(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e.nc = nc
	e.reg = prometheus.NewRegistry()
	e.srv, err = receiver.New(e.cfg, js, nc, e.reg, log)
	if err != nil {
		t.Fatal(err)
	}
	_, e.js = e.nats.Connect(t)
	e.http = httptest.NewServer(e.srv)
	t.Cleanup(e.http.Close)
	return e
}

func (e *env) declare(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.srv.DeclareStreams(ctx); err != nil {
		t.Fatal(err)
	}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// request is one HTTP request to ingest.
type request struct {
	method, path string
	header       map[string]string // "" value: header present and empty; absent key: default
	noAuth       bool
	noCT         bool
	body         string
	chunked      bool
}

type response struct {
	code   int
	header http.Header
	body   string
	took   time.Duration
}

func (e *env) do(t *testing.T, r request) response {
	t.Helper()
	return doURL(t, e.http.Client(), e.http.URL, r)
}

func doURL(t *testing.T, c *http.Client, base string, r request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/events"
	}
	var body io.Reader = strings.NewReader(r.body)
	if r.chunked {
		body = io.MultiReader(strings.NewReader(r.body)) // unknown length: sent chunked
	}
	req, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if !r.noAuth {
		req.Header.Set("Authorization", "Basic ZGVtbzp4") // demo:x, as the bus sends it
	}
	if !r.noCT {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, header: resp.Header, body: string(b), took: time.Since(t0)}
}

func (e *env) post(t *testing.T, body string) response {
	t.Helper()
	return e.do(t, request{body: body})
}

// storedMsg is a message as JetStream stored it.
type storedMsg struct {
	Subject string
	Data    string
	MsgID   string
}

// stored returns every message of the stream of kind k, in stream order.
func (e *env) stored(t *testing.T, k stream.Kind) []storedMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return storedIn(ctx, t, e.js, e.names.Stream(k))
}

func storedIn(ctx context.Context, t *testing.T, js jetstream.JetStream, name string) []storedMsg {
	t.Helper()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []storedMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %s #%d: %v", name, seq, err)
		}
		out = append(out, storedMsg{Subject: m.Subject, Data: string(m.Data), MsgID: m.Header.Get(jetstream.MsgIDHeader)})
	}
	return out
}

// expectedMessages splits a compact batch by topic with encoding/json (independently of
// package event): one message per topic in first-seen order, body "[raw,raw]".
func expectedMessages(t *testing.T, batch string, subject func(topic string) string) []storedMsg {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(batch), &raws); err != nil {
		t.Fatal(err)
	}
	var order []string
	byTopic := map[string][]string{}
	for _, r := range raws {
		var ev struct{ Topic string }
		if err := json.Unmarshal(r, &ev); err != nil {
			t.Fatal(err)
		}
		if _, ok := byTopic[ev.Topic]; !ok {
			order = append(order, ev.Topic)
		}
		byTopic[ev.Topic] = append(byTopic[ev.Topic], string(r))
	}
	var out []storedMsg
	for _, topic := range order {
		subj := subject(topic)
		body := "[" + strings.Join(byTopic[topic], ",") + "]"
		out = append(out, storedMsg{Subject: subj, Data: body, MsgID: stream.MsgID(subj, []byte(body))})
	}
	return out
}

// bySubject sorts messages by subject, then body: the topics of one batch are published
// concurrently, so their order in the stream is not defined (each subject's order is).
func bySubject(ms []storedMsg) []storedMsg {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Subject != ms[j].Subject {
			return ms[i].Subject < ms[j].Subject
		}
		return ms[i].Data < ms[j].Data
	})
	return ms
}

// eventually polls cond until it is true or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
