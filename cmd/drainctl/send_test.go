package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/stream"
)

const batch = `[{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1","t":1559567869210,"extra":1},
 {"topic":"users","type":"create","url":"https://users.example.com/u/2","t":1559567869211}]`

// fakeIngest records what reached it and answers with status and body.
type fakeIngest struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func newFakeIngest(t *testing.T, status int, answer string) *fakeIngest {
	f := &fakeIngest{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, r)
		f.body = append(f.body, string(b))
		f.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIngest) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "batch.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSendPostsTheFileAsTheBusDoes(t *testing.T) {
	f := newFakeIngest(t, http.StatusNoContent, "")
	env := []string{"DRAIN_INGEST_URL=" + f.URL + "/events", "ROUTEMASTER_DRAIN_TOKENS= first , second"}
	file := writeFile(t, batch)

	if r := run(env, "send", file); r.code != 0 || r.stdout != "204 No Content (2 events)\n" {
		t.Fatalf("send: %+v", r)
	}
	if f.count() != 1 {
		t.Fatalf("%d requests", f.count())
	}
	req := f.reqs[0]
	user, pass, ok := req.BasicAuth()
	if req.Method != http.MethodPost || req.URL.Path != "/events" || !ok || user != "first" || pass != "x" {
		t.Fatalf("request %s %s auth %q:%q (%v)", req.Method, req.URL.Path, user, pass, ok)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if f.body[0] != batch {
		t.Fatalf("body sent %q, want the file byte for byte", f.body[0])
	}

	var out sendResult
	if r := run(env, "--json", "send", file); r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil ||
		out != (sendResult{URL: f.URL + "/events", Events: 2, Status: 204}) {
		t.Fatalf("send --json: %+v (%+v)", r, out)
	}
}

func TestSendReportsARefusal(t *testing.T) {
	f := newFakeIngest(t, http.StatusForbidden, "token not accepted\n")
	env := []string{"DRAIN_INGEST_URL=" + f.URL, "ROUTEMASTER_DRAIN_TOKENS=nope"}
	r := run(env, "send", writeFile(t, batch))
	if r.code != 1 || r.stdout != "403 Forbidden (2 events)\n" || !strings.Contains(r.stderr, "403 Forbidden: token not accepted") {
		t.Fatalf("send refused: %+v", r)
	}
}

func TestSendSendsNothingWhenItCannot(t *testing.T) {
	f := newFakeIngest(t, http.StatusNoContent, "")
	env := []string{"DRAIN_INGEST_URL=" + f.URL, "ROUTEMASTER_DRAIN_TOKENS=tok"}
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"bad event", env, []string{"send", writeFile(t, `[{"topic":"a","type":"update","url":"https://x/1","t":1},{"topic":"a","type":"update","url":"ftp://x","t":2}]`)}, 1, "event 1: url: must be an absolute http(s) URL (nothing sent)"},
		{"not an array", env, []string{"send", writeFile(t, `{"topic":"a"}`)}, 1, "must be a JSON array"},
		{"no token", []string{"DRAIN_INGEST_URL=" + f.URL, "ROUTEMASTER_DRAIN_TOKENS= , "}, []string{"send", writeFile(t, batch)}, 1, "ROUTEMASTER_DRAIN_TOKENS is empty"},
		{"no file", env, []string{"send", filepath.Join(t.TempDir(), "missing.json")}, 1, "no such file"},
		{"no argument", env, []string{"send"}, 2, "Usage: drainctl send"},
		{"two arguments", env, []string{"send", "a", "b"}, 2, "Usage: drainctl send"},
		{"bad ingest URL", []string{"DRAIN_INGEST_URL=ftp://x", "ROUTEMASTER_DRAIN_TOKENS=tok"}, []string{"send", "x"}, 2, "DRAIN_INGEST_URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(c.env, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, c.code, c.want)
			}
		})
	}
	if f.count() != 0 {
		t.Fatalf("%d requests reached ingest", f.count())
	}
}

func TestSendIngestUnreachable(t *testing.T) {
	f := newFakeIngest(t, http.StatusNoContent, "")
	f.Close()
	r := run([]string{"DRAIN_INGEST_URL=" + f.URL, "ROUTEMASTER_DRAIN_TOKENS=tok"}, "send", writeFile(t, batch))
	if r.code != 1 || !strings.Contains(r.stderr, "POST "+f.URL) {
		t.Fatalf("unreachable: %+v", r)
	}
}

// The ingest binary accepts what send posts and stores each topic's events in JetStream.
func TestSendToRealIngest(t *testing.T) {
	srv := draintest.StartNATS(t)
	addr := draintest.FreeAddr(t)
	in := draintest.StartProcess(t, draintest.BuildBinary(t, "../../services/ingest"),
		[]string{"ROUTEMASTER_DRAIN_TOKENS=demo", "DRAIN_PREFIX=sendt", "NATS_URL=" + srv.URL(), "DRAIN_INGEST_ADDR=" + addr,
			"DRAIN_ADMIN_ADDR=" + draintest.FreeAddr(t)})
	in.WaitHTTP("http://"+addr+"/readyz", http.StatusOK, 20*time.Second)
	_, js := srv.Connect(t)
	ingestURL := "http://" + addr + "/events"

	env := []string{"DRAIN_INGEST_URL=" + ingestURL, "ROUTEMASTER_DRAIN_TOKENS=demo,other"}
	if r := run(env, "send", writeFile(t, batch)); r.code != 0 || r.stdout != "204 No Content (2 events)\n" {
		t.Fatalf("send: %+v", r)
	}
	names := stream.Names{Prefix: "sendt"}
	st, err := js.Stream(ctx, names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, names.Subject(stream.Events, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"topic":"orders","type":"update","url":"https://orders.example.com/api/orders/1","t":1559567869210,"extra":1}]`; string(m.Data) != want {
		t.Fatalf("stored %s", m.Data)
	}

	if r := run([]string{"DRAIN_INGEST_URL=" + ingestURL, "ROUTEMASTER_DRAIN_TOKENS=intruder"}, "send", writeFile(t, batch)); r.code != 1 || !strings.Contains(r.stdout, "403") {
		t.Fatalf("send with a wrong token: %+v", r)
	}
}
