package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Event
	}{
		{"empty array", `[]`, nil},
		{"empty array with spaces", " [ ] \n", nil},
		{"single create", `[{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/1001","t":1559567869123}]`,
			[]Event{{Topic: "orders", Type: Create, URL: "https://orders.example.com/api/orders/1001", T: 1559567869123}}},
		{"fractional t truncated", `[{"topic":"legacy_things","type":"noop","url":"https://legacy.example.com/things/1","t":1559567873000.9}]`,
			[]Event{{Topic: "legacy_things", Type: Noop, URL: "https://legacy.example.com/things/1", T: 1559567873000}}},
		{"exponent t", `[{"topic":"a","type":"update","url":"http://x.test/1","t":1.5e3}]`,
			[]Event{{Topic: "a", Type: Update, URL: "http://x.test/1", T: 1500}}},
		{"data kept", `[{"topic":"a","type":"update","url":"http://x.test/1","t":1,"data":{"lat":51.5}}]`,
			[]Event{{Topic: "a", Type: Update, URL: "http://x.test/1", T: 1, Data: json.RawMessage(`{"lat":51.5}`)}}},
		{"empty data kept", `[{"topic":"a","type":"update","url":"http://x.test/1","t":1,"data":{}}]`,
			[]Event{{Topic: "a", Type: Update, URL: "http://x.test/1", T: 1, Data: json.RawMessage(`{}`)}}},
		{"null data is absent", `[{"topic":"a","type":"delete","url":"http://x.test/1","t":1,"data":null}]`,
			[]Event{{Topic: "a", Type: Delete, URL: "http://x.test/1", T: 1}}},
		{"unknown fields kept, key order free", `[{"x":[1,{"y":null}],"t":7,"url":"https://h.test:8443/a#f","type":"noop","topic":"t-1"}]`,
			[]Event{{Topic: "t-1", Type: Noop, URL: "https://h.test:8443/a#f", T: 7}}},
		{"keys match case-insensitively, as encoding/json", `[{"Topic":"a","TYPE":"create","Url":"http://x.test/1","T":3,"DATA":{}}]`,
			[]Event{{Topic: "a", Type: Create, URL: "http://x.test/1", T: 3, Data: json.RawMessage(`{}`)}}},
		{"non-ASCII strings", `[{"topic":"a","type":"create","url":"http://x.test/café/été","t":1,"data":{"name":"Zoë ☕ 𝄞"}}]`,
			[]Event{{Topic: "a", Type: Create, URL: "http://x.test/café/été", T: 1, Data: json.RawMessage(`{"name":"Zoë ☕ 𝄞"}`)}}},
		{"escaped strings", `[{"topic":"a","type":"cr\u0065ate","url":"http:\/\/x.test\/1","t":0}]`,
			[]Event{{Topic: "a", Type: Create, URL: "http://x.test/1", T: 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tc.want))
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Topic != w.Topic || g.Type != w.Type || g.URL != w.URL || g.T != w.T || string(g.Data) != string(w.Data) {
					t.Errorf("event %d = %+v, want %+v", i, g, w)
				}
				if !json.Valid(g.Raw) || !strings.Contains(tc.body, string(g.Raw)) {
					t.Errorf("event %d Raw %q is not a slice of the body", i, g.Raw)
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	const ok = `{"topic":"a","type":"create","url":"http://x.test/1","t":1}`
	tests := []struct {
		name, body string
		index      int
		field      string
	}{
		{"empty body", ``, -1, ""},
		{"object", `{"a":1}`, -1, ""},
		{"empty object", `{}`, -1, ""},
		{"scalar string", `"str"`, -1, ""},
		{"scalar number", `123`, -1, ""},
		{"null", `null`, -1, ""},
		{"truncated", `[` + ok, -1, ""},
		{"trailing garbage", `[]x`, -1, ""},
		{"number element", `[1]`, 0, ""},
		{"string element", `["x"]`, 0, ""},
		{"array element", `[[]]`, 0, ""},
		{"null element", `[null]`, 0, ""},
		{"second element bad", `[` + ok + `,{}]`, 1, "topic"},
		{"missing topic", `[{"type":"create","url":"http://x.test/1","t":1}]`, 0, "topic"},
		{"empty topic", `[{"topic":"","type":"create","url":"http://x.test/1","t":1}]`, 0, "topic"},
		{"dotted topic", `[{"topic":"a.b","type":"create","url":"http://x.test/1","t":1}]`, 0, "topic"},
		{"wildcard topic", `[{"topic":"*","type":"create","url":"http://x.test/1","t":1}]`, 0, "topic"},
		{"duplicate key", `[{"topic":"a","type":"create","url":"http://x.test/1","t":null,"t":3}]`, 0, "t"},
		{"case-variant key", `[{"url":"http://a.test/1","topic":"a","type":"create","t":1,"URL":"http://169.254.169.254/"}]`, 0, "URL"},
		{"case-variant unknown key", `[{"topic":"a","type":"create","url":"http://x.test/1","t":1,"x":1,"X":2}]`, 0, "X"},
		{"escaped duplicate key", `[{"topic":"a","type":"create","url":"http://x.test/1","t":1,"\u0074":2}]`, 0, "t"},
		{"invalid UTF-8 in url", "[{\"topic\":\"a\",\"type\":\"create\",\"url\":\"http://x.test/\xff\",\"t\":1}]", -1, ""},
		{"invalid UTF-8 in data", "[{\"topic\":\"a\",\"type\":\"create\",\"url\":\"http://x.test/1\",\"t\":1,\"data\":{\"k\":\"\xc3\"}}]", -1, ""},
		{"invalid UTF-8 in a key", "[{\"topic\":\"a\",\"type\":\"create\",\"url\":\"http://x.test/1\",\"t\":1,\"\xed\xa0\x80\":1}]", -1, ""},
		{"weird type", `[{"topic":"a","type":"weird","url":"http://x.test/1","t":1}]`, 0, "type"},
		{"numeric type", `[{"topic":"a","type":1,"url":"http://x.test/1","t":1}]`, 0, "type"},
		{"relative url", `[{"topic":"a","type":"create","url":"/x/1","t":1}]`, 0, "url"},
		{"ftp url", `[{"topic":"a","type":"create","url":"ftp://x.test/1","t":1}]`, 0, "url"},
		{"no host", `[{"topic":"a","type":"create","url":"http:///1","t":1}]`, 0, "url"},
		{"string t", `[{"topic":"a","type":"create","url":"http://x.test/1","t":"abc"}]`, 0, "t"},
		{"null t", `[{"topic":"a","type":"create","url":"http://x.test/1","t":null}]`, 0, "t"},
		{"false t", `[{"topic":"a","type":"create","url":"http://x.test/1","t":false}]`, 0, "t"},
		{"negative t", `[{"topic":"a","type":"create","url":"http://x.test/1","t":-1}]`, 0, "t"},
		{"huge t", `[{"topic":"a","type":"create","url":"http://x.test/1","t":1e300}]`, 0, "t"},
		{"missing t", `[{"topic":"a","type":"create","url":"http://x.test/1"}]`, 0, "t"},
		{"array data", `[{"topic":"a","type":"create","url":"http://x.test/1","t":1,"data":[1]}]`, 0, "data"},
		{"scalar data", `[{"topic":"a","type":"create","url":"http://x.test/1","t":1,"data":"x"}]`, 0, "data"},
		{"control char", "[{\"topic\":\"a\x01\",\"type\":\"create\",\"url\":\"http://x.test/1\",\"t\":1}]", -1, ""},
		{"deep nesting", `[{"topic":"a","type":"create","url":"http://x.test/1","t":1,"data":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}]`, -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.body))
			var perr *ParseError
			if !errors.As(err, &perr) {
				t.Fatalf("Parse(%q) error = %v, want a *ParseError", tc.body, err)
			}
			if perr.Index != tc.index || perr.Field != tc.field {
				t.Errorf("ParseError = {Index:%d Field:%q} (%v), want {Index:%d Field:%q}", perr.Index, perr.Field, perr, tc.index, tc.field)
			}
		})
	}
}

func TestGroupByTopicKeepsRawBytes(t *testing.T) {
	body := `[{"topic":"orders","type":"update","url":"https://o.test/1","t":1,"extra":true},` +
		`{"topic":"riders","type":"create","url":"https://r.test/77","t":2},` +
		`{"topic":"orders","type":"delete","url":"https://o.test/2","t":3, "data":{"k":"v"}}]`
	events, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	groups := GroupByTopic(events)
	if len(groups) != 2 || groups[0].Topic != "orders" || groups[1].Topic != "riders" {
		t.Fatalf("groups = %+v", groups)
	}
	want := `[{"topic":"orders","type":"update","url":"https://o.test/1","t":1,"extra":true},{"topic":"orders","type":"delete","url":"https://o.test/2","t":3, "data":{"k":"v"}}]`
	if got := string(groups[0].JSON()); got != want {
		t.Errorf("orders JSON = %s\nwant %s", got, want)
	}
	// Re-parsing a group gives back the same events.
	again, err := Parse(groups[0].JSON())
	if err != nil || len(again) != 2 || again[1].URL != "https://o.test/2" {
		t.Fatalf("re-parse = %+v, %v", again, err)
	}
}

func TestEventMarshalWithoutRaw(t *testing.T) {
	e := Event{Topic: "a", Type: Update, URL: "http://x.test/1", T: 5}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"topic":"a","type":"update","url":"http://x.test/1","t":5}` {
		t.Errorf("Marshal = %s", b)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || back.URL != e.URL || back.T != 5 {
		t.Errorf("Unmarshal = %+v, %v", back, err)
	}
}
