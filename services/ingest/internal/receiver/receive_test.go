package receiver_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/routemaster-drain/drain/pkg/stream"
)

const okBatch = `[{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/1001","t":1559567869123}]`

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestReceiverBehaviour covers the gem's receiver (path, method, auth, content type, body)
// and the deliberate differences of docs/ingest.md, in the gem's check order. Every case
// asserts the status, the error body, and what JetStream stored.
func TestReceiverBehaviour(t *testing.T) {
	e := start(t, "DRAIN_INGEST_MAX_BODY=2048", "DRAIN_INGEST_MAX_EVENTS=3")
	e.declare(t)
	ev := func(fields string) string { return "[{" + fields + "}]" }
	const good = `"topic":"orders","type":"create","url":"https://o.test/1","t":1`
	tests := []struct {
		name    string
		req     request
		code    int
		errPart string // substring of the {"error": ...} body; "" for 204
		stored  int    // messages stored by this request
	}{
		// RootPostOnly: path before method.
		{"POST /events", request{body: okBatch}, 204, "", 1},
		{"POST /events/ (trailing slash)", request{path: "/events/", body: okBatch}, 204, "", 0 /* same batch: deduplicated */},
		{"GET /x is 404 not 405", request{method: "GET", path: "/x"}, 404, "not found", 0},
		{"POST /x", request{path: "/x", body: okBatch}, 404, "not found", 0},
		{"POST /eventsx", request{path: "/eventsx", body: okBatch}, 404, "not found", 0},
		{"POST /events/x", request{path: "/events/x", body: okBatch}, 404, "not found", 0},
		{"POST / (root)", request{path: "/", body: okBatch}, 404, "not found", 0},
		{"GET /events", request{method: "GET"}, 405, "method", 0},
		{"PUT /events", request{method: "PUT", body: okBatch}, 405, "method", 0},
		{"DELETE /events/", request{method: "DELETE", path: "/events/"}, 405, "method", 0},
		{"OPTIONS /events", request{method: "OPTIONS"}, 405, "method", 0},
		{"405 before 401", request{method: "GET", noAuth: true}, 405, "method", 0},

		// Authenticate.
		{"no Authorization", request{noAuth: true, body: okBatch}, 401, "missing Authorization", 0},
		{"401 before 415", request{noAuth: true, header: map[string]string{"Content-Type": "text/plain"}}, 401, "missing", 0},
		{"wrong token", request{header: map[string]string{"Authorization": basic("nope", "x")}, body: okBatch}, 403, "token not accepted", 0},
		{"403 before 415", request{header: map[string]string{"Authorization": basic("nope", "x"), "Content-Type": "text/plain"}}, 403, "token", 0},
		{"empty Authorization", request{header: map[string]string{"Authorization": ""}, body: okBatch}, 403, "token", 0},
		{"Basic with nothing", request{header: map[string]string{"Authorization": "Basic "}, body: okBatch}, 403, "token", 0},
		{"empty username (:x, the bus without uuid)", request{header: map[string]string{"Authorization": "Basic Ong="}, body: okBatch}, 403, "token", 0},
		{"Bearer", request{header: map[string]string{"Authorization": "Bearer demo"}, body: okBatch}, 403, "token", 0},
		{"prefix of a token (gem substring quirk not kept)", request{header: map[string]string{"Authorization": basic("dem", "x")}, body: okBatch}, 403, "token", 0},
		{"token with trailing space is not trimmed on the wire", request{header: map[string]string{"Authorization": basic("demo ", "x")}, body: okBatch}, 403, "token", 0},
		{"invalid base64", request{header: map[string]string{"Authorization": "Basic !!!!"}, body: okBatch}, 403, "token", 0},
		{"password ignored", request{header: map[string]string{"Authorization": basic("demo", "anything")}, body: ev(good)}, 204, "", 1},
		{"no colon", request{header: map[string]string{"Authorization": "Basic " + b64("demo")}, body: ev(good)}, 204, "", 0},
		{"empty password", request{header: map[string]string{"Authorization": basic("demo", "")}, body: ev(good)}, 204, "", 0},
		{"bare base64 without scheme (gem quirk kept)", request{header: map[string]string{"Authorization": b64("demo:x")}, body: ev(good)}, 204, "", 0},
		{"two spaces after Basic", request{header: map[string]string{"Authorization": "Basic  " + b64("demo:x")}, body: ev(good)}, 204, "", 0},
		{"lower-case scheme (RFC 7617; gem 403)", request{header: map[string]string{"Authorization": "basic " + b64("demo:x")}, body: ev(good)}, 204, "", 0},
		{"unpadded base64", request{header: map[string]string{"Authorization": "Basic " + strings.TrimRight(b64("demo:xy"), "=")}, body: ev(good)}, 204, "", 0},
		{"second token, configured with spaces", request{header: map[string]string{"Authorization": basic("other", "x")}, body: ev(good)}, 204, "", 0},

		// Parse: content type.
		{"no Content-Type", request{noCT: true, body: okBatch}, 415, "application/json", 0},
		{"text/plain", request{header: map[string]string{"Content-Type": "text/plain"}, body: okBatch}, 415, "application/json", 0},
		{"application/jsonx", request{header: map[string]string{"Content-Type": "application/jsonx"}, body: okBatch}, 415, "application/json", 0},
		{"application/json; charset=utf-8 (gem 415)", request{header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, body: ev(good)}, 204, "", 0},
		{"application/json;charset=utf-8 (gem 415)", request{header: map[string]string{"Content-Type": "application/json;charset=utf-8"}, body: ev(good)}, 204, "", 0},
		{"Application/JSON", request{header: map[string]string{"Content-Type": "Application/JSON"}, body: ev(good)}, 204, "", 0},
		{"415 before 400", request{header: map[string]string{"Content-Type": "text/plain"}, body: "garbage"}, 415, "application/json", 0},

		// Parse: the body, with the deliberate differences of docs/ingest.md.
		{"empty array", request{body: `[]`}, 204, "", 0},
		{"empty array with whitespace", request{body: " [ ]\n"}, 204, "", 0},
		{"empty object (gem 204)", request{body: `{}`}, 400, "JSON array", 0},
		{"object (gem 500)", request{body: `{"a":1}`}, 400, "JSON array", 0},
		{"string scalar (gem 500)", request{body: `"str"`}, 400, "JSON array", 0},
		{"number scalar (gem 500)", request{body: `123`}, 400, "JSON array", 0},
		{"null (gem 500)", request{body: `null`}, 400, "JSON array", 0},
		{"[1] (gem 500)", request{body: `[1]`}, 400, "event 0: must be a JSON object", 0},
		{`["x"] (gem 500)`, request{body: `["x"]`}, 400, "event 0", 0},
		{"[[]] (gem 500)", request{body: `[[]]`}, 400, "event 0", 0},
		{"[null]", request{body: `[null]`}, 400, "event 0", 0},
		{"[{}]", request{body: `[{}]`}, 400, "event 0: topic: is required", 0},
		{"empty body", request{body: ``}, 400, "empty body", 0},
		{"truncated JSON", request{body: okBatch[:40]}, 400, "malformed JSON", 0},
		{"trailing garbage", request{body: okBatch + "x"}, 400, "malformed JSON", 0},
		{"missing t", request{body: ev(`"topic":"a","type":"create","url":"https://o.test/1"`)}, 400, "event 0: t: is required", 0},
		{"missing type", request{body: ev(`"topic":"a","url":"https://o.test/1","t":1`)}, 400, "event 0: type: is required", 0},
		{"missing url", request{body: ev(`"topic":"a","type":"create","t":1`)}, 400, "event 0: url: is required", 0},
		{"null topic", request{body: ev(`"topic":null,"type":"create","url":"https://o.test/1","t":1`)}, 400, "event 0: topic: is required", 0},
		{"false url", request{body: ev(`"topic":"a","type":"create","url":false,"t":1`)}, 400, "event 0: url", 0},
		{"wrong-case key is the key, as encoding/json reads it", request{body: ev(`"Topic":"a","type":"create","url":"https://o.test/1","t":1`)}, 204, "", 1},
		{"duplicate key", request{body: ev(good + `,"t":null`)}, 400, "t: duplicate key", 0},
		{"case-variant key", request{body: ev(good + `,"URL":"http://169.254.169.254/"`)}, 400, "URL: duplicate key", 0},
		{"invalid UTF-8", request{body: ev(good + ",\"x\":\"\xff\"")}, 400, "invalid UTF-8", 0},
		{`t "abc" (gem accepted)`, request{body: ev(`"topic":"a","type":"create","url":"https://o.test/1","t":"abc"`)}, 400, "event 0: t: must be a number", 0},
		{`type "weird" (gem accepted)`, request{body: ev(`"topic":"a","type":"weird","url":"https://o.test/1","t":1`)}, 400, "event 0: type: must be one of", 0},
		{`empty strings (gem accepted)`, request{body: ev(`"topic":"","type":"","url":"","t":0`)}, 400, "event 0: topic", 0},
		{`relative url (gem accepted)`, request{body: ev(`"topic":"a","type":"create","url":"/orders/1","t":1`)}, 400, "url: must be an absolute http(s) URL", 0},
		{`data not an object`, request{body: ev(good + `,"data":[1]`)}, 400, "event 0: data: must be a JSON object", 0},
		{`one bad event rejects the whole batch`, request{body: `[{` + good + `},{"topic":"a","type":"create","url":"https://o.test/2","t":-5}]`}, 400, "event 1: t: must not be negative", 0},
		{`t 0 accepted`, request{body: ev(`"topic":"a","type":"noop","url":"https://o.test/zero","t":0`)}, 204, "", 1},

		// Bounds.
		{"body over DRAIN_INGEST_MAX_BODY (Content-Length)", request{body: "[" + strings.Repeat(" ", 3000) + "]"}, 413, "body larger than 2048 bytes", 0},
		{"body over DRAIN_INGEST_MAX_BODY (chunked)", request{body: "[" + strings.Repeat(" ", 3000) + "]", chunked: true}, 413, "body larger than 2048 bytes", 0},
		{"more than DRAIN_INGEST_MAX_EVENTS events", request{body: "[" + strings.Repeat("{"+good+"},", 3) + "{" + good + "}]"}, 413, "4 events: more than 3", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.stored(t, stream.Events)) + len(e.stored(t, stream.Siphon))
			r := e.do(t, tc.req)
			if r.code != tc.code {
				t.Fatalf("status %d, want %d (body %q)", r.code, tc.code, r.body)
			}
			if tc.code == http.StatusNoContent {
				if r.body != "" {
					t.Errorf("204 with body %q", r.body)
				}
			} else {
				var eb struct{ Error string }
				if err := json.Unmarshal([]byte(r.body), &eb); err != nil || !strings.Contains(eb.Error, tc.errPart) {
					t.Errorf("error body %q, want {\"error\": \"...%s...\"}", r.body, tc.errPart)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("error Content-Type %q", ct)
				}
			}
			switch tc.code {
			case 405:
				if r.header.Get("Allow") != "POST" {
					t.Errorf("405 without Allow: POST")
				}
			case 401:
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("401 without WWW-Authenticate: Basic")
				}
			}
			after := len(e.stored(t, stream.Events)) + len(e.stored(t, stream.Siphon))
			if after-before != tc.stored {
				t.Errorf("stored %d messages, want %d", after-before, tc.stored)
			}
		})
	}
}

// TestPathConfigurable serves a custom DRAIN_INGEST_PATH given with a trailing slash.
func TestPathConfigurable(t *testing.T) {
	e := start(t, "DRAIN_INGEST_PATH=/rm/drain/")
	e.declare(t)
	for path, want := range map[string]int{"/rm/drain": 204, "/rm/drain/": 204, "/events": 404, "/rm": 404} {
		if r := e.do(t, request{path: path, body: `[]`}); r.code != want {
			t.Errorf("POST %s = %d, want %d", path, r.code, want)
		}
	}
}
