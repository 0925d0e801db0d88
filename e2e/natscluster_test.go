package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/draintest"
)

// On a freshly formed 3-node NATS cluster with R3 streams, all four services are ready within
// 10 s of their start; then, under concurrent batches resent like the bus resends them, a
// SIGKILL of the events stream's leader loses no acknowledged batch and stores none twice.
func TestNATSClusterLeaderLoss(t *testing.T) {
	cluster := draintest.StartNATSCluster(t, 3)
	rs := draintest.StartRedis(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer origin.Close()
	bus := draintest.FreeAddr(t)
	common := []string{"NATS_URL=" + cluster.URLs(), "DRAIN_PREFIX=cl", "DRAIN_STREAM_REPLICAS=3", "DRAIN_LOG_LEVEL=warn",
		"ROUTEMASTER_DRAIN_REDIS=" + rs.URL(0, "cl")}
	services := []struct {
		name string
		env  []string
	}{
		{"ingest", []string{"ROUTEMASTER_DRAIN_TOKENS=demo", "DRAIN_INGEST_ADDR=" + bus}},
		{"filter", nil},
		{"warmer", nil},
		{"sweeper", []string{"DRAIN_SWEEP_PUBLISH=true", "DRAIN_SWEEP_INTERVAL=1s"}},
	}
	bins := make([]string, len(services))
	for i, svc := range services {
		bins[i] = draintest.BuildBinary(t, "../services/"+svc.name)
	}
	start := time.Now()
	admins := make([]string, len(services))
	procs := make([]*draintest.Process, len(services))
	for i, svc := range services {
		admins[i] = draintest.FreeAddr(t)
		procs[i] = draintest.StartProcess(t, bins[i], append(append([]string{"DRAIN_ADMIN_ADDR=" + admins[i]}, svc.env...), common...))
	}
	for i, p := range procs {
		p.WaitHTTP("http://"+admins[i]+"/readyz", http.StatusOK, 10*time.Second-time.Since(start))
	}
	t.Logf("ingest, filter, warmer and sweeper ready %v after start on a fresh 3-node cluster", time.Since(start).Round(time.Millisecond))

	// Eight bus connections, each sending its own batches and resending each until it is
	// answered 2xx, as the bus does.
	var (
		acked    sync.Map // batch number -> its URLs
		sent     atomic.Int64
		resends  atomic.Int64
		stopLoad = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				n := int(sent.Add(1))
				body, urls := clusterBatch(origin.URL, c, i)
				for attempt := 0; ; attempt++ {
					if attempt > 0 {
						resends.Add(1)
						time.Sleep(50 * time.Millisecond)
					}
					if attempt > 400 {
						t.Errorf("batch %d/%d never acknowledged", c, i)
						return
					}
					req, _ := http.NewRequest(http.MethodPost, "http://"+bus+"/events", strings.NewReader(body))
					req.SetBasicAuth("demo", "x")
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						continue
					}
					resp.Body.Close()
					if resp.StatusCode/100 == 2 {
						acked.Store(n, urls)
						break
					}
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	leader := cluster.StreamLeader(t, "cl_events")
	leader.Kill()
	t.Logf("killed %s, the events stream's leader", leader.Name())
	time.Sleep(3 * time.Second)
	leader.Start()
	time.Sleep(2 * time.Second)
	close(stopLoad)
	wg.Wait()

	// Every acknowledged batch's events are stored, each exactly once.
	nc, err := nats.Connect(cluster.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stored := map[string]int{}
	var s jetstream.Stream
	var info *jetstream.StreamInfo
	draintest.Eventually(t, 30*time.Second, "the events stream answering after the leader's restart", func() bool {
		if s, err = js.Stream(ctx, "cl_events"); err == nil {
			info, err = s.Info(ctx)
		}
		return err == nil
	})
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		var m *jetstream.RawStreamMsg
		draintest.Eventually(t, 10*time.Second, fmt.Sprintf("message %d of the events stream", seq), func() bool {
			m, err = s.GetMsg(ctx, seq)
			return err == nil
		})
		var events []struct{ URL string }
		if err := json.Unmarshal(m.Data, &events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			stored[e.URL]++
		}
	}
	batches := 0
	acked.Range(func(_, v any) bool {
		batches++
		for _, u := range v.([]string) {
			if stored[u] != 1 {
				t.Errorf("%s of an acknowledged batch stored %d times, want once", u, stored[u])
			}
		}
		return true
	})
	for u, n := range stored {
		if n > 1 {
			t.Errorf("%s stored %d times", u, n)
		}
	}
	if batches < 50 {
		t.Fatalf("only %d batches acknowledged: the load did not run", batches)
	}
	t.Logf("%d batches acknowledged (%d resends), %d messages stored", batches, resends.Load(), info.State.Msgs)
}

// clusterBatch is batch i of connection c: ten events of one topic with URLs of their own on
// the origin at base.
func clusterBatch(base string, c, i int) (string, []string) {
	var events, urls []string
	for e := range 10 {
		u := fmt.Sprintf("%s/c%d/b%d/e%d", base, c, i, e)
		urls = append(urls, u)
		events = append(events, fmt.Sprintf(`{"topic":"orders","type":"update","url":%q,"t":%d}`, u, 1+e))
	}
	return "[" + strings.Join(events, ",") + "]", urls
}
