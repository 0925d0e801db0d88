package receiver_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/services/ingest/internal/receiver"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Sample batches as the Routemaster bus posts them, byte for byte.
var samples = []struct{ name, body string }{
	{"A single create", `[{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/1001","t":1559567869123}]`},
	{"B several topics", `[{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1001","t":1559567869210},{"topic":"riders","type":"create","url":"https://riders.example.com/api/riders/77","t":1559567869215},{"topic":"restaurants","type":"update","url":"https://restaurants.example.com/api/restaurants/9","t":1559567869302}]`},
	{"C noop backfill", `[{"topic":"restaurants","type":"noop","url":"https://restaurants.example.com/api/restaurants/1","t":1559568000001},{"topic":"restaurants","type":"noop","url":"https://restaurants.example.com/api/restaurants/2","t":1559568000002},{"topic":"restaurants","type":"noop","url":"https://restaurants.example.com/api/restaurants/3","t":1559568000003},{"topic":"restaurants","type":"noop","url":"https://restaurants.example.com/api/restaurants/4","t":1559568000004}]`},
	{"D delete", `[{"topic":"orders","type":"delete","url":"https://orders.example.com/api/orders/1001","t":1559567875000}]`},
	{"E data", `[{"topic":"rider_locations","type":"update","url":"https://riders.example.com/api/riders/77/location","t":1559567869500,"data":{"lat":51.5074,"lng":-0.1278}},{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1004","t":1559567869510,"data":{"status":"picked_up","eta_s":540}}]`},
	{"F lifecycle", `[{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/1002","t":1559567870001},{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1002","t":1559567870150},{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1002","t":1559567870420},{"topic":"orders","type":"delete","url":"https://orders.example.com/api/orders/1002","t":1559567871000}]`},
	{"G arrival order differs from t", `[{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1003","t":1559567872500},{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1003","t":1559567872100}]`},
	{"H delete then re-create", `[{"topic":"orders","type":"delete","url":"https://orders.example.com/api/orders/1005","t":1559567880000},{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/1005","t":1559567880300}]`},
	{"I empty data", `[{"topic":"menus","type":"update","url":"https://menus.example.com/api/menus/5","t":1559567873000,"data":{}}]`},
	{"J fractional t", `[{"topic":"legacy_things","type":"noop","url":"https://legacy.example.com/things/1","t":1559567873000.0}]`},
	{"K empty batch", `[]`},
	{"L URL variants", `[{"topic":"users","type":"update","url":"https://api.example.com:8443/v1/users/42","t":1559567890000},{"topic":"users","type":"noop","url":"https://api.example.com/v1/users/42#profile","t":1559567890000}]`},
	{"N full batch of max 5", `[{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/2001","t":1559567900001},{"topic":"riders","type":"update","url":"https://riders.example.com/api/riders/5","t":1559567900002},{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/2002","t":1559567900003},{"topic":"riders","type":"update","url":"https://riders.example.com/api/riders/6","t":1559567900004},{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/2003","t":1559567900005}]`},
}

// TestSampleBatches posts each sample batch and asserts what JetStream stored: one message
// per topic in first-seen order, on <prefix>.events.<topic>, body "[...]" of the original
// event bytes, Nats-Msg-Id derived from subject and body.
func TestSampleBatches(t *testing.T) {
	e := start(t)
	e.declare(t)
	subject := func(topic string) string { return prefix + ".events." + topic }
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			before := len(e.stored(t, stream.Events))
			if r := e.post(t, s.body); r.code != 204 || r.body != "" {
				t.Fatalf("status %d body %q, want 204 and no body", r.code, r.body)
			}
			got := bySubject(e.stored(t, stream.Events)[before:])
			want := bySubject(expectedMessages(t, s.body, subject))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("stored\n%v\nwant\n%v", got, want)
			}
			for _, m := range got {
				if len(m.MsgID) != 32 {
					t.Errorf("Nats-Msg-Id %q is not 32 hex digits", m.MsgID)
				}
			}
		})
	}
	// M: F is redelivered byte for byte after H was accepted, twice, concurrently: stored once.
	t.Run("M redelivery", func(t *testing.T) {
		before := len(e.stored(t, stream.Events))
		f, h := samples[5].body, samples[7].body
		done := make(chan response, 2)
		for range 2 {
			go func() { done <- doURL(t, e.http.Client(), e.http.URL, request{body: f}) }()
		}
		for range 2 {
			if r := <-done; r.code != 204 {
				t.Fatalf("redelivered F: %d %s", r.code, r.body)
			}
		}
		if r := e.post(t, h); r.code != 204 {
			t.Fatalf("H: %d", r.code)
		}
		if got := e.stored(t, stream.Events)[before:]; len(got) != 0 {
			t.Errorf("redelivery stored %d new messages: %v", len(got), got)
		}
	})
}

// TestSiphon routes DRAIN_SIPHON_TOPICS to <prefix>.siphon.<topic>, and only those.
func TestSiphon(t *testing.T) {
	e := start(t, "DRAIN_SIPHON_TOPICS=riders, menus")
	e.declare(t)
	b := samples[1].body // orders, riders, restaurants
	if r := e.post(t, b); r.code != 204 {
		t.Fatalf("status %d", r.code)
	}
	all := expectedMessages(t, b, func(topic string) string { return e.srv.Subject(topic) })
	if all[1].Subject != prefix+".siphon.riders" {
		t.Fatalf("riders routed to %s", all[1].Subject)
	}
	if got, want := e.stored(t, stream.Siphon), all[1:2]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("siphon stream %v, want %v", got, want)
	}
	if got, want := bySubject(e.stored(t, stream.Events)), bySubject([]storedMsg{all[0], all[2]}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events stream %v, want %v", got, want)
	}
}

func TestBadSiphonTopicFailsNew(t *testing.T) {
	cfg := config.Default(config.Ingest, "ROUTEMASTER_DRAIN_TOKENS=demo", "DRAIN_SIPHON_TOPICS=ok,not.a.token")
	_, err := receiver.New(cfg, nil, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	var verr *config.VarError
	if !errors.As(err, &verr) || verr.Name != "DRAIN_SIPHON_TOPICS" {
		t.Fatalf("New = %v, want a *config.VarError naming DRAIN_SIPHON_TOPICS", err)
	}
}

// TestNATSDown stops NATS mid-test: ingest answers 503 with Retry-After at once (nothing is
// buffered), and after the restart the same batch is accepted and stored once, even though
// the batch posted before the outage is posted again too.
func TestNATSDown(t *testing.T) {
	e := start(t, "DRAIN_INGEST_PUBLISH_TIMEOUT=3s", "DRAIN_INGEST_RETRY_AFTER=7")
	e.declare(t)
	x, y := samples[0].body, samples[1].body
	if r := e.post(t, x); r.code != 204 {
		t.Fatalf("before the outage: %d", r.code)
	}
	e.nats.Stop()
	eventually(t, 5*time.Second, "ingest to see the disconnection", func() bool { return !e.nc.IsConnected() })
	for i := range 5 {
		r := e.post(t, y)
		if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "7" {
			t.Fatalf("NATS down, attempt %d: %d Retry-After %q, want 503 and 7", i, r.code, r.header.Get("Retry-After"))
		}
		if r.took > 1500*time.Millisecond {
			t.Errorf("503 took %v, want well under the 3s publish timeout", r.took)
		}
		t.Logf("NATS down: 503 in %v", r.took)
	}
	if r := e.do(t, request{method: "GET", path: "/readyz"}); r.code != 503 {
		t.Errorf("/readyz with NATS down = %d", r.code)
	}
	e.nats.Start()
	eventually(t, 15*time.Second, "ingest ready again", func() bool { return e.do(t, request{method: "GET", path: "/readyz"}).code == 200 })
	for _, b := range []string{y, y, x} {
		if r := e.post(t, b); r.code != 204 {
			t.Fatalf("after restart: %d %s", r.code, r.body)
		}
	}
	subject := func(topic string) string { return prefix + ".events." + topic }
	want := bySubject(append(expectedMessages(t, x, subject), expectedMessages(t, y, subject)...))
	if got := bySubject(e.stored(t, stream.Events)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored\n%v\nwant\n%v", got, want)
	}
}

// TestJetStreamSilent: NATS is up but nothing acknowledges (a core subscriber swallows the
// publish, as a stalled stream would): 503 once DRAIN_INGEST_PUBLISH_TIMEOUT has passed, not
// near the bus's 20 s.
func TestJetStreamSilent(t *testing.T) {
	e := start(t, "DRAIN_INGEST_PUBLISH_TIMEOUT=400ms")
	nc, _ := e.nats.Connect(t)
	if _, err := nc.Subscribe(prefix+".events.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	r := e.post(t, samples[1].body)
	if r.code != 503 || r.header.Get("Retry-After") != "5" {
		t.Fatalf("status %d Retry-After %q, want 503 and 5", r.code, r.header.Get("Retry-After"))
	}
	if r.took < 350*time.Millisecond || r.took > 3*time.Second {
		t.Errorf("503 after %v, want about the 400ms publish timeout", r.took)
	}
	if n := metricValue(t, e, "drain_ingest_publish_failures_total", "reason", "timeout"); n != 1 {
		t.Errorf("publish timeout failures = %v", n)
	}
}

// holdRequest opens a connection and sends the headers and the first byte of a POST whose
// body is still to come, so the request is in flight until finish is called.
func holdRequest(t *testing.T, addr, body string) (finish func() (int, error)) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ZGVtbzp4\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:1])
	return func() (int, error) {
		if _, err := io.WriteString(c, body[1:]); err != nil {
			return 0, err
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

// TestInflightCap: with DRAIN_INGEST_MAX_INFLIGHT=1 and one batch in flight, the next gets
// 503 with Retry-After at once; the held one still completes.
func TestInflightCap(t *testing.T) {
	e := start(t, "DRAIN_INGEST_MAX_INFLIGHT=1")
	e.declare(t)
	finish := holdRequest(t, strings.TrimPrefix(e.http.URL, "http://"), samples[0].body)
	eventually(t, 5*time.Second, "the held request in flight", func() bool {
		return metricValue(t, e, "drain_ingest_inflight_batches") == 1
	})
	r := e.post(t, samples[1].body)
	if r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the cap: %d Retry-After %q", r.code, r.header.Get("Retry-After"))
	}
	if r.took > time.Second { // immediately, not after the 3s publish timeout
		t.Errorf("over-cap 503 took %v", r.took)
	}
	if code, err := finish(); err != nil || code != 204 {
		t.Fatalf("held request: %d %v", code, err)
	}
	if got := len(e.stored(t, stream.Events)); got != 1 {
		t.Errorf("stored %d messages, want 1", got)
	}
	if r := e.post(t, samples[1].body); r.code != 204 {
		t.Errorf("under the cap again: %d", r.code)
	}
}

// metricValue is the value of a metric's series with the given label pairs, -1 when absent.
func metricValue(t *testing.T, e *env, name string, labels ...string) float64 {
	t.Helper()
	v, ok := draintest.Metric(t, e.reg, name, labels...)
	if !ok {
		return -1
	}
	return v
}

// TestMetricsAndLogs checks the series ingest exports and that no log line holds a token.
func TestMetricsAndLogs(t *testing.T) {
	e := start(t)
	e.declare(t)
	e.post(t, samples[1].body) // orders update, riders create, restaurants update
	e.post(t, samples[2].body) // 4 restaurants noop
	e.do(t, request{noAuth: true, body: `[]`})
	e.do(t, request{header: map[string]string{"Authorization": basic("other-secret", "x")}, body: `[]`})
	e.do(t, request{header: map[string]string{"Authorization": basic("demo", "pa55word")}, body: `[{"topic":"a"}]`})
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	exposition := rec.Body.String()
	for _, line := range []string{
		`drain_ingest_requests_total{code="204"} 2`,
		`drain_ingest_requests_total{code="401"} 1`,
		`drain_ingest_requests_total{code="403"} 1`,
		`drain_ingest_requests_total{code="400"} 1`,
		`drain_ingest_events_total{topic="restaurants",type="noop"} 4`,
		`drain_ingest_events_total{topic="restaurants",type="update"} 1`,
		`drain_ingest_events_total{topic="riders",type="create"} 1`,
		`drain_ingest_auth_failures_total{reason="missing"} 1`,
		`drain_ingest_auth_failures_total{reason="failed"} 1`,
		`drain_ingest_publish_duration_seconds_count 2`,
		`drain_ingest_inflight_batches 0`,
	} {
		if !strings.Contains(exposition, line+"\n") {
			t.Errorf("the metrics lack %q", line)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"status":403`) {
		t.Errorf("the 403 was not logged: %s", logs)
	}
	for _, secret := range []string{"demo", "other", "other-secret", "pa55word", "ZGVtbzp4", b64("other-secret:x")} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}

// Topics come from whoever holds a bus token: 500 distinct ones give at most
// DRAIN_METRICS_MAX_TOPICS + 1 topic values, every event still counted.
func TestTopicLabelBounded(t *testing.T) {
	e := start(t, "DRAIN_METRICS_MAX_TOPICS=20", "DRAIN_SIPHON_TOPICS=audit")
	e.declare(t)
	const topics = 500
	var batch strings.Builder
	batch.WriteString("[")
	for i := range topics {
		fmt.Fprintf(&batch, `{"topic":"t%d","type":"update","url":"https://a.test/%d","t":1},`, i, i)
	}
	batch.WriteString(`{"topic":"audit","type":"create","url":"https://a.test/audit","t":1}]`)
	if r := e.post(t, batch.String()); r.code != 204 {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "drain_ingest_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" {
					values[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	var total float64
	for _, v := range values {
		total += v
	}
	if len(values) != 22 || values[receiver.OtherTopic] != topics-20 || values["audit"] != 1 || total != topics+1 {
		t.Errorf("%d topic values (want 20, audit and %q), %v under %q, %v events in all", len(values), receiver.OtherTopic,
			values[receiver.OtherTopic], receiver.OtherTopic, total)
	}
}

// The bus port answers /healthz and /readyz; /metrics is the admin address's, 404 here.
func TestHealthAndReady(t *testing.T) {
	e := start(t)
	if r := e.do(t, request{method: "GET", path: "/healthz"}); r.code != 200 {
		t.Errorf("/healthz = %d", r.code)
	}
	if r := e.do(t, request{method: "GET", path: "/metrics"}); r.code != 404 {
		t.Errorf("/metrics on the bus port = %d, want 404", r.code)
	}
	if r := e.do(t, request{method: "GET", path: "/readyz"}); r.code != 503 || !strings.Contains(r.body, "stream") {
		t.Errorf("/readyz before the streams exist = %d %s", r.code, r.body)
	}
	e.declare(t)
	if r := e.do(t, request{method: "GET", path: "/readyz"}); r.code != 200 {
		t.Errorf("/readyz = %d %s", r.code, r.body)
	}
}

// TestDeclareRetriesUntilNATSAnswers starts ingest while NATS is down: DeclareStreams keeps
// trying and succeeds once NATS is started.
func TestDeclareRetriesUntilNATSAnswers(t *testing.T) {
	e := start(t)
	e.nats.Stop()
	done := make(chan error, 1)
	go func() { done <- e.srv.DeclareStreams(context.Background()) }()
	time.Sleep(300 * time.Millisecond) // let at least one attempt fail
	if r := e.post(t, samples[0].body); r.code != 503 {
		t.Errorf("post before NATS is up: %d", r.code)
	}
	e.nats.Start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("DeclareStreams did not succeed after NATS came up")
	}
	if r := e.post(t, samples[0].body); r.code != 204 {
		t.Errorf("post after declare: %d", r.code)
	}
}

// TestServeTLSAndGracefulShutdown serves HTTPS from DRAIN_INGEST_TLS_CERT/KEY; cancelling the
// context stops accepting connections but finishes the request in flight.
func TestServeTLSAndGracefulShutdown(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	e := start(t, "DRAIN_INGEST_TLS_CERT="+certFile, "DRAIN_INGEST_TLS_KEY="+keyFile)
	e.declare(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + ln.Addr().String()
	if r := doURL(t, client, base, request{body: samples[0].body}); r.code != 204 {
		t.Fatalf("https post: %d", r.code)
	}
	// A request in flight over TLS when shutdown starts.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := samples[3].body
	fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ZGVtbzp4\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:1])
	eventually(t, 5*time.Second, "request in flight", func() bool {
		return metricValue(t, e, "drain_ingest_inflight_batches") == 1
	})
	cancel()
	eventually(t, 5*time.Second, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if _, err := io.WriteString(conn, body[1:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("in-flight request during shutdown: %v %v", resp, err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if got := len(e.stored(t, stream.Events)); got != 2 {
		t.Errorf("stored %d, want 2", got)
	}
}

func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ingest-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, pool
}

// TestSlowClientCutOff: a client that never finishes its headers is disconnected after
// ReadHeaderTimeout, and does not hold up other clients meanwhile.
func TestSlowClientCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for ReadHeaderTimeout")
	}
	e := start(t)
	e.declare(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.srv.Serve(ctx, ln) }()
	slow, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	t0 := time.Now()
	if _, err := io.WriteString(slow, "POST /events HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	if r := doURL(t, http.DefaultClient, "http://"+ln.Addr().String(), request{body: samples[0].body}); r.code != 204 {
		t.Errorf("other client while one is slow: %d", r.code)
	}
	_ = slow.SetReadDeadline(time.Now().Add(receiver.ReadHeaderTimeout + 5*time.Second))
	_, err = io.ReadAll(slow) // the server closes the connection (possibly after a 408)
	if err != nil {
		t.Fatalf("slow connection not closed by the server: %v", err)
	}
	if took := time.Since(t0); took < receiver.ReadHeaderTimeout-time.Second || took > receiver.ReadHeaderTimeout+3*time.Second {
		t.Errorf("slow connection closed after %v, want about %v", took, receiver.ReadHeaderTimeout)
	}
}
