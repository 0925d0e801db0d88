package receiver_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
)

// benchBody returns a unique compact 100-event batch over 3 topics.
func benchBody(buf []byte, n int64) []byte {
	topics := [3]string{"orders", "riders", "restaurants"}
	b := append(buf[:0], '[')
	for i := range 100 {
		if i > 0 {
			b = append(b, ',')
		}
		tp := topics[i%3]
		b = append(b, `{"topic":"`+tp+`","type":"update","url":"https://`+tp+`.example.com/api/`+tp+`/`...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","t":`...)
		b = strconv.AppendInt(b, 1559567869000+n, 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

// BenchmarkHandler calls the handler directly (no HTTP transport) with unique 100-event
// batches: auth, parse, split, publish three messages to a private JetStream, wait for acks.
func BenchmarkHandler(b *testing.B) {
	e := start(b, "DRAIN_INGEST_MAX_INFLIGHT=4096", "DRAIN_STREAM_STORAGE=memory", "DRAIN_LOG_LEVEL=error")
	benchHandler(b, e, func(body []byte) int {
		req := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Basic ZGVtbzp4")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		return w.Code
	})
}

// BenchmarkHTTP is BenchmarkHandler through a real HTTP server and keep-alive client.
func BenchmarkHTTP(b *testing.B) {
	e := start(b, "DRAIN_INGEST_MAX_INFLIGHT=4096", "DRAIN_STREAM_STORAGE=memory", "DRAIN_LOG_LEVEL=error")
	client := e.http.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
	benchHandler(b, e, func(body []byte) int {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Basic ZGVtbzp4")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	})
}

func benchHandler(b *testing.B, e *env, do func([]byte) int) {
	e.declare(b)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody(nil, 1))))
	b.SetParallelism(16) // 32 concurrent batches on 2 CPUs, like a busy bus
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf []byte
		for pb.Next() {
			buf = benchBody(buf, n.Add(1))
			if code := do(buf); code != http.StatusNoContent {
				b.Errorf("status %d", code)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "events/s")
}
