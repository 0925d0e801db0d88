package event

import (
	"encoding/json"
	"strconv"
	"testing"
)

// benchBatch is a compact 100-event batch over 3 topics, as the bus sends it.
func benchBatch() []byte {
	topics := []string{"orders", "riders", "restaurants"}
	b := []byte{'['}
	for i := range 100 {
		if i > 0 {
			b = append(b, ',')
		}
		tp := topics[i%3]
		b = append(b, `{"topic":"`+tp+`","type":"update","url":"https://`+tp+`.example.com/api/`+tp+`/`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","t":`...)
		b = strconv.AppendInt(b, 1559567869000+int64(i), 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

// BenchmarkParse measures Parse on a 100-event batch beside encoding/json decoding the same
// batch into the event fields (the reference: compare the two ns/op of one run, never numbers
// of different runs); b.SetBytes makes both report MB/s.
func BenchmarkParse(b *testing.B) {
	body := benchBatch()
	b.Run("event.Parse", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("event.ScanAppend", func(b *testing.B) { // what ingest calls, reusing one slice
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		var events []Event
		for b.Loop() {
			var err error
			if events, err = ScanAppend(events[:0], body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var events []wireFields
			if err := json.Unmarshal(body, &events); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParseGroupJSON is what ingest does per batch: parse, split by topic, build each
// topic's message body.
func BenchmarkParseGroupJSON(b *testing.B) {
	body := benchBatch()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		events, err := Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		for _, g := range GroupByTopic(events) {
			buf, _ = AppendJSON(buf[:0], g.Events)
		}
	}
}
