package filtering_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/draintest"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/stream"
	"github.com/routemaster-drain/drain/services/filter/internal/filtering"
)

const prefix = "ft"

// env is a private NATS and Redis with the drain's streams declared.
type env struct {
	t     *testing.T
	nats  *draintest.NATS
	redis *draintest.Redis
	js    jetstream.JetStream
	rdb   *redis.Client
	names stream.Names
	env   []string
	cfg   *config.Config
}

func newEnv(t *testing.T, overrides ...string) *env {
	t.Helper()
	return newEnvOn(t, draintest.StartNATS(t), overrides...)
}

// newEnvOn is newEnv on a NATS server of the test's choice.
func newEnvOn(t *testing.T, n *draintest.NATS, overrides ...string) *env {
	t.Helper()
	r := draintest.StartRedis(t, draintest.RedisOptions{AOF: true})
	e := &env{t: t, nats: n, redis: r, names: stream.Names{Prefix: prefix}}
	e.env = append([]string{
		"NATS_URL=" + n.URL(),
		"ROUTEMASTER_DRAIN_REDIS=" + r.URL(0, ""),
		"DRAIN_PREFIX=" + prefix,
		"DRAIN_RETRY_BACKOFF=100ms",
		"DRAIN_RETRY_BACKOFF_MAX=1s",
		"DRAIN_ACK_WAIT=3s",
		"DRAIN_ADMIN_ADDR=127.0.0.1:0",
	}, overrides...)
	e.cfg = config.Default(config.Filter, e.env...)
	_, e.js = n.Connect(t)
	e.rdb = r.Client(t, 0)
	// Every acknowledged write reaches the AOF before Redis answers, so killing Redis loses
	// nothing the filter was told is done.
	if err := e.rdb.ConfigSet(context.Background(), "appendfsync", "always").Err(); err != nil {
		t.Fatal(err)
	}
	if err := stream.Declare(context.Background(), e.js, e.cfg.Streams); err != nil {
		t.Fatal(err)
	}
	return e
}

// instance is a filter running in this process on its own NATS connection.
type instance struct {
	t   testing.TB
	f   *filtering.Filter
	reg *prometheus.Registry
}

func (e *env) startFilter() *instance {
	e.t.Helper()
	_, js := e.nats.Connect(e.t)
	rdb := e.redis.Client(e.t, 0)
	reg := prometheus.NewRegistry()
	f, err := filtering.New(e.cfg, js, rdb, rdb, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("filter Run: %v", err)
		}
	})
	return &instance{t: e.t, f: f, reg: reg}
}

// counter sums every series of a metric of this instance (0 when it has none).
func (i *instance) counter(name string) float64 {
	v, _ := draintest.Metric(i.t, i.reg, name)
	return v
}

type ev struct {
	Type string
	URL  string
	T    int64
}

func body(topic string, events ...ev) []byte {
	parts := make([]string, len(events))
	for i, e := range events {
		parts[i] = fmt.Sprintf(`{"topic":%q,"type":%q,"url":%q,"t":%d}`, topic, e.Type, e.URL, e.T)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

func url(s string) string { return "https://example.com/" + s }

// publish stores a batch on <prefix>.events.<topic> as ingest would and returns its sequence.
func (e *env) publish(topic string, events ...ev) uint64 {
	e.t.Helper()
	return e.publishRaw(topic, body(topic, events...))
}

func (e *env) publishRaw(topic string, b []byte) uint64 {
	e.t.Helper()
	subj := e.names.Subject(stream.Events, topic)
	ack, err := e.js.Publish(context.Background(), subj, b, jetstream.WithMsgID(stream.MsgID(subj, b)))
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// waitDone waits until the filter's consumer has acked every message of the events stream.
func (e *env) waitDone(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cons, err := e.js.Consumer(ctx, e.names.Stream(stream.Events), e.names.Durable(filtering.ConsumerName))
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = cons.Info(ctx)
		}
		var si *jetstream.StreamInfo
		if err == nil {
			var s jetstream.Stream
			if s, err = e.js.Stream(ctx, e.names.Stream(stream.Events)); err == nil {
				si, err = s.Info(ctx)
			}
		}
		cancel()
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= si.State.LastSeq {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("filter did not finish within %v: %+v %v", timeout, info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type changedMsg struct {
	Subject string
	Header  nats.Header
	Events  []event.Event
}

// changed returns every message stored on <prefix>.changed.>.
func (e *env) changed() []changedMsg {
	return e.messages(stream.Changed)
}

func (e *env) messages(k stream.Kind) []changedMsg {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, e.names.Stream(k))
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []changedMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		c := changedMsg{Subject: m.Subject, Header: m.Header}
		if k == stream.Changed {
			if c.Events, err = event.Parse(m.Data); err != nil {
				e.t.Fatalf("changed message %d is not a batch: %v", seq, err)
			}
		} else {
			c.Events = []event.Event{{Raw: json.RawMessage(m.Data)}}
		}
		out = append(out, c)
	}
	return out
}

// state returns the newest t stored for url (0 when none).
func (e *env) state(u string) int64 {
	e.t.Helper()
	st, err := reorder.ReadState(context.Background(), e.rdb, "rm", u)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.T
}

func (e *env) dirty() map[string]bool {
	e.t.Helper()
	out := map[string]bool{}
	for b := range dirty.Buckets {
		for _, u := range e.rdb.SMembers(context.Background(), dirty.KeysFor("rm", b).Items).Val() {
			out[u] = true
		}
	}
	return out
}

func brief(events []event.Event) string {
	parts := make([]string, len(events))
	for i, e := range events {
		parts[i] = string(e.Type) + " " + strings.TrimPrefix(e.URL, "https://example.com/") + "@" + strconv.FormatInt(e.T, 10)
	}
	return strings.Join(parts, ", ")
}

// quietRedis drops go-redis's own log lines (connection refused while a test stops Redis).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	draintest.Main(m)
}
