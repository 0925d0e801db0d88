package event

import (
	"encoding/json"
	"testing"
)

// FuzzParse checks Parse against encoding/json: Parse never accepts invalid JSON, every event
// it returns re-parses from its Raw bytes to the same fields, and it never panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`[]`, `{}`, `[1]`, `[null]`, `""`,
		`[{"topic":"orders","type":"create","url":"https://orders.example.com/api/orders/1001","t":1559567869123}]`,
		`[{"topic":"rider_locations","type":"update","url":"https://riders.example.com/api/riders/77/location","t":1559567869500,"data":{"lat":51.5074,"lng":-0.1278}}]`,
		`[{"topic":"legacy_things","type":"noop","url":"https://legacy.example.com/things/1","t":1559567873000.0}]`,
		`[{"topic":"menus","type":"update","url":"https://menus.example.com/api/menus/5","t":1559567873000,"data":{}}]`,
		`[{"topic":"users","type":"update","url":"https://api.example.com:8443/v1/users/42","t":1559567890000},{"topic":"users","type":"noop","url":"https://api.example.com/v1/users/42#profile","t":1559567890000}]`,
		`[{"topic":"a","type":"cr\u0065ate","url":"http:\/\/x.test\/1","t":1e3,"x":[true,false,null,"\n"]}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := Parse(body)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("Parse accepted invalid JSON %q", body)
		}
		var generic []map[string]any
		if err := json.Unmarshal(body, &generic); err != nil || len(generic) != len(events) {
			t.Fatalf("encoding/json disagrees on %q: %v (%d vs %d)", body, err, len(generic), len(events))
		}
		for i, e := range events {
			if generic[i]["url"] != e.URL || generic[i]["topic"] != e.Topic || generic[i]["type"] != string(e.Type) {
				t.Fatalf("event %d fields %+v disagree with encoding/json %v", i, e, generic[i])
			}
			again, err := parseEvent(e.Raw, i)
			if err != nil || again.URL != e.URL || again.T != e.T || string(again.Data) != string(e.Data) {
				t.Fatalf("event %d does not re-parse from Raw %q: %+v, %v", i, e.Raw, again, err)
			}
		}
	})
}
