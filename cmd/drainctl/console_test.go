package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/cmd/drainctl/internal/status"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/stream"
)

const consoleToken = "console-test-token"

// startConsole runs `drainctl console` in this process on a free loopback port until the test
// ends, and returns its base URL.
func startConsole(t *testing.T, env []string) string {
	t.Helper()
	addr := draintest.FreeAddr(t)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan result, 1)
	var out, errb draintest.Buffer
	go func() {
		code := Main(cctx, []string{"console"}, append(env, "DRAIN_CONSOLE_ADDR="+addr), &out, &errb)
		done <- result{code, out.String(), errb.String()}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case r := <-done:
			if r.code != 0 {
				t.Errorf("console exited %d: %s", r.code, r.stderr)
			}
		case <-time.After(10 * time.Second):
			t.Error("console did not stop within 10 s")
		}
	})
	base := "http://" + addr
	draintest.Eventually(t, 10*time.Second, "the console answers", func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
		req.Header.Set("Authorization", "Bearer "+consoleToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	if !strings.Contains(out.String(), "drainctl console: serving "+base+"/") {
		t.Fatalf("console printed %q", out.String())
	}
	return base
}

// chromium returns the browser the console is tested in: DRAIN_TEST_CHROMIUM, else Debian's
// chromium (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DRAIN_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("no chromium: install Debian's chromium (.ci/run does) or set DRAIN_TEST_CHROMIUM")
	return ""
}

// browser starts a headless chromium with a fresh profile that sends the console token with
// every request, and collects every JavaScript exception, console error and browser-log error.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
	shot map[string][]byte
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: bctx, shot: map[string][]byte{}}
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Bearer " + consoleToken}}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				b.mu.Lock()
				b.errs = append(b.errs, fmt.Sprintf("%s:%d: %s", m.URL, m.Line+1, m))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// noErrors fails the test if the page reported any JavaScript or console error so far.
func (b *browser) noErrors(t *testing.T, where string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		t.Fatalf("%s: JavaScript or console errors:\n%s", where, strings.Join(b.errs, "\n"))
	}
}

func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// open navigates to url and checks the answer's status.
func (b *browser) open(t *testing.T, url string, status int) {
	t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.Run(sctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	if res.Status != int64(status) {
		t.Fatalf("open %s: status %d, want %d", url, res.Status, status)
	}
}

// click clicks sel, which submits a form or follows a link, and checks the new page's status.
func (b *browser) click(t *testing.T, sel string, status int) {
	t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	if res.Status != int64(status) {
		t.Fatalf("click %s: status %d, want %d", sel, res.Status, status)
	}
}

func eval[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	return eval[string](t, b, fmt.Sprintf(`document.querySelector(%q).textContent.trim()`, sel))
}

// screenshot takes a PNG of the whole page as name; they are written to docs/console when
// DRAIN_UPDATE_SCREENSHOTS=1.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Fatalf("screenshot %s: not a PNG (%d bytes)", name, len(png))
	}
	b.shot[name] = png
}

func (b *browser) writeScreenshots(t *testing.T) {
	t.Helper()
	if os.Getenv("DRAIN_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, png := range b.shot {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d screenshots to %s", len(b.shot), dir)
}

// pipelineNumbers are the numbers the pipeline page shows.
type pipelineNumbers struct {
	Refreshed   string `json:"refreshed"`
	Dirty       string `json:"dirty"`
	Leased      string `json:"leased"`
	DeadLetters string `json:"dead_letters"`
	Pending     string `json:"pending"`
	AckPending  string `json:"ack_pending"`
	Rate        string `json:"rate"`
	WarmPending string `json:"warm_pending"`
	Rows        int    `json:"rows"`
}

const readPipeline = `(() => {
	const cell = (key, k) => document.querySelector('#consumers tr[data-key="' + key + '"] td[data-k="' + k + '"]').textContent;
	return {
		refreshed: document.body.dataset.refreshed || "",
		dirty: document.getElementById("dirty").textContent,
		leased: document.getElementById("leased").textContent,
		dead_letters: document.getElementById("dead-letters").textContent,
		pending: cell("wld_events/wld_filter", "pending"),
		ack_pending: cell("wld_events/wld_filter", "ack_pending"),
		rate: cell("wld_events/wld_filter", "rate"),
		warm_pending: cell("wld_warm/wld_warm_routemaster", "pending"),
		rows: document.querySelectorAll("#consumers tbody tr").length,
	};
})()`

// samePipeline checks that the page shows the numbers `drainctl status --json` prints.
func samePipeline(t *testing.T, got pipelineNumbers, st status.Status) {
	t.Helper()
	var filter, warm status.Consumer
	for _, c := range st.Consumers {
		switch c.Name {
		case "wld_filter":
			filter = c
		case "wld_warm_routemaster":
			warm = c
		}
	}
	want := pipelineNumbers{Refreshed: got.Refreshed, Dirty: fmt.Sprint(st.Dirty), Leased: fmt.Sprint(st.Leased),
		DeadLetters: fmt.Sprint(st.DeadLetters), Pending: fmt.Sprint(filter.Pending), AckPending: fmt.Sprint(filter.AckPending),
		Rate: got.Rate, WarmPending: fmt.Sprint(warm.Pending), Rows: len(st.Consumers)}
	if got != want {
		t.Fatalf("the pipeline page shows %+v, drainctl status --json says %+v", got, want)
	}
}

func statusJSON(t *testing.T, env []string) status.Status {
	t.Helper()
	r := run(env, "status", "--json")
	var st status.Status
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("status --json: %+v", r)
	}
	return st
}

// TestConsoleInBrowser drives the console in a real headless chromium against private NATS
// and Redis: the pipeline page agrees with `drainctl status --json` and refreshes live, a
// dead letter replayed from its page is back on its original subject, a purge needs its
// confirmation, the URL inspector and the breakers page show what Redis and the warmer hold,
// and no page has a JavaScript error. It takes a screenshot of each page.
func TestConsoleInBrowser(t *testing.T) {
	w := newWorld(t)
	inspected := inspectable(t, w)
	env := append(w.env, "DRAIN_CONSOLE_TOKEN="+consoleToken)
	base := startConsole(t, env)
	b := newBrowser(t)

	// Pipeline: the numbers of drainctl status, then refreshed live by the script.
	b.open(t, base+"/", http.StatusOK)
	b.do(t, "first refresh", chromedp.WaitReady(chromedp.CSS(`body[data-refreshed]`)))
	samePipeline(t, eval[pipelineNumbers](t, b, readPipeline), statusJSON(t, w.env))
	b.noErrors(t, "pipeline")
	b.screenshot(t, "pipeline")

	// One more delivery to the filter: the next refresh shows it, with a rate.
	filter, err := w.js.Consumer(ctx, w.names.Stream(stream.Events), w.names.Durable("filter"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := filter.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var live pipelineNumbers
	draintest.Eventually(t, 15*time.Second, "the page shows the new delivery", func() bool {
		live = eval[pipelineNumbers](t, b, readPipeline)
		return live.AckPending == fmt.Sprint(worldFilterAckPending+1)
	})
	samePipeline(t, live, statusJSON(t, w.env))
	if live.Pending != fmt.Sprint(worldFilterPending-1) || live.Rate == "–" || live.Rate == "0.0" {
		t.Fatalf("after one more delivery the page shows %+v", live)
	}
	b.noErrors(t, "pipeline refresh")

	// Dead letters: browse, inspect one, replay it.
	b.open(t, base+"/dead-letters", http.StatusOK)
	if n := eval[int](t, b, `document.querySelectorAll("#letters tbody tr").length`); n != 3 {
		t.Fatalf("dead letters page lists %d", n)
	}
	b.screenshot(t, "dead-letters")
	b.click(t, `#letters tr[data-seq="1"] a`, http.StatusOK)
	if body := b.text(t, "#body"); !strings.Contains(body, "https://bad.example.com/1") {
		t.Fatalf("dead letter 1 body: %q", body)
	}
	if h := b.text(t, "#headers"); !strings.Contains(h, stream.HeaderError) || !strings.Contains(h, "host not allowed: bad.example.com") {
		t.Fatalf("dead letter 1 headers: %q", h)
	}
	b.screenshot(t, "dead-letter")
	b.click(t, "#replay-one", http.StatusOK)
	if got := b.text(t, "#outcomes tbody"); !strings.Contains(got, "replayed") || strings.Contains(got, "not replayed") {
		t.Fatalf("replay outcome: %q", got)
	}
	b.screenshot(t, "replayed")
	if n := w.dlqCount(t); n != 2 {
		t.Fatalf("DLQ holds %d after replaying one of 3", n)
	}
	events, err := w.js.Stream(ctx, w.names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	back, err := events.GetLastMsgForSubject(ctx, w.names.Subject(stream.Events, "bad"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(back.Data), "https://bad.example.com/1") || back.Header.Get(stream.HeaderReplaySequence) != "6" ||
		back.Header.Get(stream.HeaderReplayStream) != w.names.Stream(stream.Events) {
		t.Fatalf("replayed message on %s: %s %v", back.Subject, back.Data, back.Header)
	}
	b.noErrors(t, "dead letters")

	// Purge: the first POST only asks; the confirmation deletes.
	b.open(t, base+"/dead-letters", http.StatusOK)
	b.click(t, "#purge-all", http.StatusOK)
	if got := b.text(t, "#purge-count"); got != "2" {
		t.Fatalf("purge confirmation counts %q", got)
	}
	if n := w.dlqCount(t); n != 2 {
		t.Fatalf("DLQ holds %d before the purge is confirmed", n)
	}
	b.screenshot(t, "purge-confirm")
	b.click(t, "#confirm-purge", http.StatusOK)
	if got := b.text(t, "#purged"); !strings.HasPrefix(got, "Purged 2 dead letters") {
		t.Fatalf("purge result: %q", got)
	}
	if n := w.dlqCount(t); n != 0 {
		t.Fatalf("DLQ holds %d after the confirmed purge", n)
	}
	b.noErrors(t, "purge")

	// URL inspector, through its form.
	b.open(t, base+"/url", http.StatusOK)
	b.do(t, "fill the URL form", chromedp.SendKeys(chromedp.ID("url"), inspected.url))
	b.click(t, `form[action="/url"] button`, http.StatusOK)
	if got := b.text(t, "#state-t"); got != "1559567869210" {
		t.Fatalf("inspector state t %q", got)
	}
	wantDirty := "Dirty: marked"
	if inspected.leased {
		wantDirty = "Leased: a sweeper holds it"
	}
	if got := b.text(t, "#dirty-state"); !strings.HasPrefix(got, wantDirty) {
		t.Fatalf("inspector dirty state %q, want %q…", got, wantDirty)
	}
	if got := b.text(t, "#cache-index"); got != "1" {
		t.Fatalf("inspector cache index %q", got)
	}
	rows := eval[[]string](t, b, `Array.from(document.querySelectorAll("#variants tbody tr"), r => Array.from(r.cells, c => c.textContent.trim()).join(" "))`)
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "(none) (none) 0 stale") || !strings.HasPrefix(rows[1], "(none) fr 1 fresh") ||
		!strings.HasPrefix(rows[2], "2 (none) 0 stale") {
		t.Fatalf("inspector variants %q", rows)
	}
	if got := b.text(t, "#warm-outcome"); !strings.HasPrefix(got, "Not recorded") {
		t.Fatalf("inspector warm outcome %q", got)
	}
	b.screenshot(t, "url")
	b.noErrors(t, "URL inspector")

	// Circuit breakers, from the warmer's /metrics.
	b.open(t, base+"/breakers", http.StatusOK)
	if got := b.text(t, `#breakers tr[data-host="127.0.0.1"] td[data-k="state"]`); got != "open" {
		t.Fatalf("breaker of 127.0.0.1: %q", got)
	}
	if got := b.text(t, "#breakers tbody"); !strings.Contains(got, "filter") || !strings.Contains(got, "no breaker") ||
		!strings.Contains(got, "sweeper") || !strings.Contains(got, "cannot read") {
		t.Fatalf("breakers table: %q", got)
	}
	b.screenshot(t, "breakers")
	b.noErrors(t, "breakers")

	// Back to the pipeline, which now agrees on the empty DLQ.
	b.open(t, base+"/", http.StatusOK)
	b.do(t, "refresh", chromedp.WaitReady(chromedp.CSS(`body[data-refreshed]`)))
	samePipeline(t, eval[pipelineNumbers](t, b, readPipeline), statusJSON(t, w.env))
	b.noErrors(t, "pipeline at the end")

	// NATS away: the page says so, and its script reloads it once NATS is back.
	w.nats.Stop()
	b.open(t, base+"/", http.StatusServiceUnavailable)
	if got := b.text(t, ".alert"); !strings.HasPrefix(got, "Cannot read the deployment's state") {
		t.Fatalf("pipeline without NATS: %q", got)
	}
	w.nats.Start()
	b.do(t, "the page comes back by itself", chromedp.WaitReady(chromedp.CSS(`body[data-refreshed]`)))
	samePipeline(t, eval[pipelineNumbers](t, b, readPipeline), statusJSON(t, w.env))
	b.onlyStatusErrors(t, http.StatusServiceUnavailable)
	b.writeScreenshots(t)
}

// onlyStatusErrors checks that the errors reported so far are only the browser's own lines
// about answers with the given status (what a 503 page and a failing /api/status log), no
// exception, and forgets them.
func (b *browser) onlyStatusErrors(t *testing.T, code int) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		if !strings.Contains(e, fmt.Sprintf("status of %d", code)) || strings.Contains(e, "exception") {
			t.Fatalf("unexpected error: %s (all: %q)", e, b.errs)
		}
	}
	b.errs = nil
}

// inspected is the URL the inspector test looks at: a filter state, a dirty-map entry and
// three cached variants, one of them fresh.
type inspected struct {
	url    string
	leased bool
}

func inspectable(t *testing.T, w *world) inspected {
	t.Helper()
	u := "https://o.example.com/0" // marked dirty by the world, perhaps the leased one
	f, err := reorder.New(w.rdb, reorder.Options{Namespace: "ns1", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Run(ctx, 42, []event.Event{{Topic: "orders", Type: "update", URL: u, T: 1559567869210}}, false); err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(w.rdb, cache.Options{Namespace: "ns1", Expiry: time.Hour,
		Fetcher: cache.FetcherFunc(func(_ context.Context, url string, v cache.Variant) (*cache.Response, error) {
			return &cache.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: []byte(fmt.Sprintf(`{"url":%q,"version":%q,"locale":%q}`, url, v.Version, v.Locale))}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []cache.Variant{{}, {Version: "2"}} {
		if _, err := c.Get(ctx, u, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Invalidate(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, u, cache.Variant{Locale: "fr"}); err != nil {
		t.Fatal(err)
	}
	st, err := w.dirty.Status(ctx, u)
	if err != nil || !st.Dirty() {
		t.Fatalf("%s is not dirty: %+v %v", u, st, err)
	}
	return inspected{url: u, leased: st.Leased}
}

// Every request needs the token: Bearer or the Basic-auth password, else 401 with a
// challenge. Replay and purge also need a same-origin form of this console.
func TestConsoleAuthAndCSRF(t *testing.T) {
	w := newWorld(t)
	base := startConsole(t, append(w.env, "DRAIN_CONSOLE_TOKEN="+consoleToken))
	get := func(path, auth string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(body)
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for _, path := range []string{"/", "/api/status", "/dead-letters", "/static/console.css", "/nope"} {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + consoleToken + "x", basic(consoleToken, ""), basic("x", "wrong"), "Token " + consoleToken} {
			code, h, _ := get(path, auth)
			if code != http.StatusUnauthorized || !strings.Contains(strings.Join(h.Values("WWW-Authenticate"), ","), `Basic realm="drain console"`) {
				t.Fatalf("GET %s with %q: %d %v", path, auth, code, h)
			}
		}
	}
	if code, h, body := get("/api/status", "Bearer "+consoleToken); code != 200 || !strings.Contains(body, `"dead_letters":3`) ||
		!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("bearer: %d %s", code, body)
	}
	if code, _, _ := get("/", basic("anyone", consoleToken)); code != 200 {
		t.Fatalf("basic auth with the token as password: %d", code)
	}

	// The CSRF token of this process is in the page's forms; a POST without it, or from
	// another origin, changes nothing.
	csrf := consoleCSRF(t, base)
	post := func(path string, form url.Values, origin string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+consoleToken)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range []struct {
		form   url.Values
		origin string
	}{
		{url.Values{"confirm": {"yes"}}, ""},
		{url.Values{"confirm": {"yes"}, "csrf": {strings.Repeat("0", 64)}}, ""},
		{url.Values{"confirm": {"yes"}, "csrf": {csrf}}, "http://evil.example.com"},
	} {
		if code := post("/dead-letters/purge", tc.form, tc.origin); code != http.StatusForbidden {
			t.Fatalf("purge %v from %q: %d", tc.form, tc.origin, code)
		}
		if code := post("/dead-letters/replay", tc.form, tc.origin); code != http.StatusForbidden {
			t.Fatalf("replay %v from %q: %d", tc.form, tc.origin, code)
		}
	}
	if n := w.dlqCount(t); n != 3 {
		t.Fatalf("refused requests changed the DLQ: %d left", n)
	}
	// The same form from the console's own origin is accepted: without confirm=yes it only asks.
	if code := post("/dead-letters/purge", url.Values{"csrf": {csrf}}, base); code != 200 || w.dlqCount(t) != 3 {
		t.Fatalf("unconfirmed purge: %d, %d left", code, w.dlqCount(t))
	}
	if code := post("/dead-letters/purge", url.Values{"csrf": {csrf}, "confirm": {"yes"}, "stage": {"warm"}}, base); code != 200 || w.dlqCount(t) != 2 {
		t.Fatalf("confirmed purge of stage warm: %d, %d left", code, w.dlqCount(t))
	}
	if code := post("/dead-letters/replay", url.Values{"csrf": {csrf}, "seq": {"9"}}, base); code != http.StatusNotFound {
		t.Fatalf("replay of a missing sequence: %d", code)
	}
	if code, _, _ := get("/dead-letters/999", "Bearer "+consoleToken); code != http.StatusNotFound {
		t.Fatalf("missing dead letter: %d", code)
	}
	if code, _, _ := get("/dead-letters?stage=a.b", "Bearer "+consoleToken); code != http.StatusBadRequest {
		t.Fatalf("bad stage: %d", code)
	}
}

// Without a token the console listens only on a loopback address; elsewhere it refuses to
// start with one line naming the variable.
func TestConsoleNeedsATokenOffLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9099", ":9099", "192.0.2.1:9099", "example.com:9099"} {
		r := run([]string{"DRAIN_CONSOLE_ADDR=" + addr}, "console")
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "DRAIN_CONSOLE_TOKEN") ||
			!strings.Contains(r.stderr, addr) {
			t.Fatalf("%s without a token: %+v", addr, r)
		}
	}
	// On loopback it serves without one.
	w := newWorld(t)
	base := startConsole(t, w.env)
	res, err := http.Get(base + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("loopback console without a token: %d", res.StatusCode)
	}
}

// One replay request republishes at most 200 dead letters and says how many remain.
func TestConsoleReplayIsBounded(t *testing.T) {
	w := newWorld(t)
	base := startConsole(t, append(w.env, "DRAIN_CONSOLE_TOKEN="+consoleToken))
	for i := range 205 {
		m := nats.NewMsg(w.names.Subject(stream.DLQ, "bulk"))
		m.Data = []byte(fmt.Sprintf(`[{"topic":"bulk","type":"noop","url":"https://o.example.com/b/%d","t":1}]`, i))
		m.Header.Set(stream.HeaderOrigSubject, w.names.Subject(stream.Events, "bulk"))
		if _, err := w.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	csrf := consoleCSRF(t, base)
	replay := func() string {
		t.Helper()
		form := url.Values{"csrf": {csrf}, "stage": {"bulk"}}
		req, _ := http.NewRequest(http.MethodPost, base+"/dead-letters/replay", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+consoleToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("replay: %d %s", res.StatusCode, body)
		}
		return string(body)
	}
	if page := replay(); !strings.Contains(page, "<strong>5</strong> of the selection are still in the DLQ") || !strings.Contains(page, `id="replay-more"`) {
		t.Fatalf("first replay page:\n%s", page)
	}
	if n := w.dlqCount(t); n != worldDeadFilter+worldDeadWarm+5 {
		t.Fatalf("DLQ holds %d after replaying 200 of 205", n)
	}
	if page := replay(); strings.Contains(page, `id="replay-more"`) || !strings.Contains(page, "5 found") {
		t.Fatalf("second replay page:\n%s", page)
	}
	if n := w.dlqCount(t); n != worldDeadFilter+worldDeadWarm {
		t.Fatalf("DLQ holds %d after replaying the stage", n)
	}
}

// consoleCSRF reads the console's CSRF token from its dead-letters page.
func consoleCSRF(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/dead-letters", nil)
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the dead letters page:\n%s", page)
	}
	return string(m[1])
}
