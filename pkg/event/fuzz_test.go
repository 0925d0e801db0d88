package event

import (
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"
)

// jsonEvent is how an app in Go reads an event with encoding/json: keys match
// case-insensitively, the last duplicate wins.
type jsonEvent struct {
	Topic string      `json:"topic"`
	Type  string      `json:"type"`
	URL   string      `json:"url"`
	T     json.Number `json:"t"`
}

// millis is encoding/json's number read as Parse defines t: whole milliseconds, truncated.
func millis(n json.Number) (int64, bool) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return int64(f), err == nil
}

// FuzzParse checks Parse against encoding/json: Parse never accepts invalid JSON or invalid
// UTF-8; every event it accepts has the topic, type, url and t that encoding/json reads from
// the same bytes into a struct (so an app decoding Raw sees what the drain acted on); every
// event re-parses from its Raw bytes to the same fields; ScanAppend decides and reports
// exactly as Parse does, with every field but URL the same; and it never panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`[]`, `{}`, `[1]`, `[null]`, `""`,
		`[{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/1001","t":1559567869123}]`,
		`[{"topic":"rider_locations","type":"update","url":"https://riders.example.com/api/riders/77/location","t":1559567869500,"data":{"lat":51.5074,"lng":-0.1278}}]`,
		`[{"topic":"legacy_things","type":"noop","url":"https://legacy.example.com/things/1","t":1559567873000.0}]`,
		`[{"topic":"menus","type":"update","url":"https://menus.example.com/api/menus/5","t":1559567873000,"data":{}}]`,
		`[{"topic":"users","type":"update","url":"https://api.example.com:8443/v1/users/42","t":1559567890000},{"topic":"users","type":"noop","url":"https://api.example.com/v1/users/42#profile","t":1559567890000}]`,
		`[{"topic":"a","type":"cr\u0065ate","url":"http:\/\/x.test\/1","t":1e3,"x":[true,false,null,"\n"]}]`,
		`[{"url":"http://a.test/1","topic":"a","type":"create","t":1,"URL":"http://169.254.169.254/"}]`,
		`[{"Topic":"a","TYPE":"update","Url":"http://a.test/1","T":2}]`,
		"[{\"topic\":\"a\",\"type\":\"create\",\"url\":\"http://a.test/\xff\",\"t\":1}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := Parse(body)
		scanned, serr := ScanAppend(nil, body)
		if (err == nil) != (serr == nil) || err != nil && err.Error() != serr.Error() || len(scanned) != len(events) {
			t.Fatalf("ScanAppend disagrees with Parse on %q: %v, %v (%d vs %d events)", body, serr, err, len(scanned), len(events))
		}
		for i, e := range scanned {
			p := events[i]
			if e.URL != "" || e.Topic != p.Topic || e.Type != p.Type || e.T != p.T || string(e.Data) != string(p.Data) || string(e.Raw) != string(p.Raw) {
				t.Fatalf("ScanAppend event %d %+v, Parse's %+v in %q", i, e, p, body)
			}
		}
		if err != nil {
			return
		}
		if !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("Parse accepted invalid JSON or UTF-8 %q", body)
		}
		var decoded []jsonEvent
		if err := json.Unmarshal(body, &decoded); err != nil || len(decoded) != len(events) {
			t.Fatalf("encoding/json disagrees on %q: %v (%d vs %d)", body, err, len(decoded), len(events))
		}
		for i, e := range events {
			d := decoded[i]
			ms, ok := millis(d.T)
			if d.URL != e.URL || d.Topic != e.Topic || d.Type != string(e.Type) || !ok || ms != e.T {
				t.Fatalf("event %d %+v disagrees with encoding/json's %+v in %q", i, e, d, body)
			}
			again, err := parseEvent(e.Raw, i)
			if err != nil || again.URL != e.URL || again.T != e.T || string(again.Data) != string(e.Data) {
				t.Fatalf("event %d does not re-parse from Raw %q: %+v, %v", i, e.Raw, again, err)
			}
		}
	})
}
