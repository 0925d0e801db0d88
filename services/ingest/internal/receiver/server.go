package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// ErrNATSDown is the cause of a 503 answered without trying to publish because the NATS
// connection is down (reconnecting).
var ErrNATSDown = errors.New("nats: not connected")

// Server is the ingest HTTP receiver. It is an http.Handler for the ingest path plus /healthz
// and /readyz (its metrics are served on the admin address, not here); Serve runs it on a
// listener with timeouts, optional TLS and graceful shutdown. A Server is safe for concurrent
// use.
type Server struct {
	cfg             config.Receiver
	streams         stream.StreamOptions
	shutdownTimeout time.Duration
	names           stream.Names
	js              jetstream.JetStream
	ajs             jetstream.JetStream // async publishing, acks bounded by the publish timeout
	nc              *nats.Conn
	log             *slog.Logger
	m               *metrics
	tokens          tokens
	siphon          map[string]bool
	path, pathSlash string
	retryAfter      string

	inflight atomic.Int64
	stopping atomic.Bool
	batches  sync.Pool // *batch: request body, events and message buffers
	topics   sync.Map  // topic → *topicState, for the first maxSubjects topics
	nTopics  atomic.Int64
}

// topicState is what the receiver keeps of a topic between batches: its subject and its
// drain_ingest_events_total counters, looked up on the first batch that counts each type.
type topicState struct {
	subject string
	events  [len(eventTypes)]atomic.Pointer[counter]
}

type counter struct{ prometheus.Counter }

// New builds a Server from the ingest configuration (cfg.Ingest, cfg.Streams), the NATS
// connection and its JetStream context. Its metrics are registered on reg (the service serves
// them on its admin address). New fails with a *config.VarError when a siphon topic
// cannot be a subject token or no token is configured. Publishing uses a JetStream context of
// its own on nc (async, acks bounded by DRAIN_INGEST_PUBLISH_TIMEOUT); js serves readiness and
// stream declaration.
func New(cfg *config.Config, js jetstream.JetStream, nc *nats.Conn, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	s := &Server{
		cfg:             cfg.Ingest,
		streams:         cfg.Streams,
		shutdownTimeout: cfg.ShutdownTimeout,
		names:           cfg.Streams.Names(),
		js:              js,
		nc:              nc,
		log:             log,
		tokens:          newTokens(cfg.Ingest.Tokens),
		siphon:          make(map[string]bool),
		path:            cfg.Ingest.Path,
		pathSlash:       cfg.Ingest.Path + "/",
		retryAfter:      strconv.Itoa(cfg.Ingest.RetryAfter),
	}
	if len(s.tokens) == 0 {
		return nil, &config.VarError{Name: "ROUTEMASTER_DRAIN_TOKENS", Msg: "no non-empty token configured"}
	}
	for _, t := range cfg.Ingest.SiphonTopics {
		if !event.ValidTopic(t) {
			return nil, &config.VarError{Name: "DRAIN_SIPHON_TOPICS", Msg: fmt.Sprintf("%q is not a topic (1 to %d letters, digits, '_' or '-')", t, event.MaxTopicLength)}
		}
		s.siphon[t] = true
	}
	if nc == nil || js == nil {
		return nil, errors.New("ingest: nil NATS connection or JetStream context")
	}
	// Pending acks are bounded: each in-flight batch has a few topics; beyond the bound
	// PublishMsgAsync stalls briefly and then fails, which becomes a 503.
	ajs, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(cfg.Ingest.PublishTimeout),
		jetstream.WithPublishAsyncMaxPending(max(4096, 16*cfg.Ingest.MaxInflight)))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s.ajs = ajs
	m, err := newMetrics(reg, cfg.Ingest.MaxTopics, cfg.Ingest.SiphonTopics)
	if err != nil {
		return nil, fmt.Errorf("ingest metrics: %w", err)
	}
	s.m = m
	return s, nil
}

// Subject returns the subject the events of topic are published to: <prefix>.siphon.<topic>
// for a siphoned topic, <prefix>.events.<topic> otherwise.
func (s *Server) Subject(topic string) string { return s.topic(topic).subject }

// topic returns the state of topic: cached for the first maxSubjects topics, fresh (and
// dropped after the batch) beyond them.
func (s *Server) topic(topic string) *topicState {
	if v, ok := s.topics.Load(topic); ok {
		return v.(*topicState)
	}
	t := &topicState{subject: s.names.Subject(stream.Events, topic)}
	if s.siphon[topic] {
		t.subject = s.names.Subject(stream.Siphon, topic)
	}
	if s.nTopics.Add(1) <= maxSubjects {
		if v, loaded := s.topics.LoadOrStore(topic, t); loaded {
			return v.(*topicState)
		}
	}
	return t
}

// maxSubjects bounds the topic cache; topics beyond it are still served, uncached.
const maxSubjects = 4096

// ServeHTTP routes the ingest path (with or without a trailing slash) to the receiver, GET
// /healthz and /readyz to the probe handlers, and anything else (/metrics included) to 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case s.path, s.pathSlash:
		s.receive(w, r)
	case "/healthz":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	case "/readyz":
		s.readyz(w, r)
	default:
		s.reply(w, http.StatusNotFound, "not found")
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		b, _ := json.Marshal(map[string]string{"status": "not ready", "error": err.Error()})
		_, _ = w.Write(b)
		return
	}
	_, _ = io.WriteString(w, `{"status":"ready"}`)
}

// Ready reports nil when the server is not shutting down, NATS is connected and every drain
// stream exists.
func (s *Server) Ready(ctx context.Context) error {
	if s.stopping.Load() {
		return errors.New("shutting down")
	}
	return stream.Ready(ctx, s.nc, s.js, s.names)
}

// reply answers an error status with a short JSON body {"error": msg}.
func (s *Server) reply(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// unavailable answers 503 with Retry-After.
func (s *Server) unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", s.retryAfter)
	s.m.request(http.StatusServiceUnavailable)
	s.reply(w, http.StatusServiceUnavailable, msg)
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.m.request(code)
	s.log.Info("batch refused", "status", code, "reason", msg, "remote", r.RemoteAddr)
	s.reply(w, code, msg)
}

func jsonContentType(v string) bool {
	if v == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(v)
	return err == nil && mt == "application/json"
}

// receive is the bus endpoint: the checks in the gem's order, then publish, then 204.
func (s *Server) receive(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, r, http.StatusMethodNotAllowed, "method not allowed: the bus POSTs batches")
		return
	}
	auth, ok := r.Header["Authorization"]
	if !ok {
		s.m.authFailures.WithLabelValues("missing").Inc()
		w.Header().Set("WWW-Authenticate", `Basic realm="routemaster-drain"`)
		s.refuse(w, r, http.StatusUnauthorized, "missing Authorization")
		return
	}
	var scratch [128]byte
	if !s.tokens.accepts(username(auth[0], scratch[:])) {
		s.m.authFailures.WithLabelValues("failed").Inc()
		s.refuse(w, r, http.StatusForbidden, "token not accepted")
		return
	}
	if !jsonContentType(r.Header.Get("Content-Type")) {
		s.refuse(w, r, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	if r.ContentLength > s.cfg.MaxBody {
		s.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBody))
		return
	}
	// The slot is taken before the body is read, so memory is bounded by
	// DRAIN_INGEST_MAX_INFLIGHT × DRAIN_INGEST_MAX_BODY whatever the number of connections.
	if n := s.inflight.Add(1); n > int64(s.cfg.MaxInflight) {
		s.inflight.Add(-1)
		s.m.publishFail.WithLabelValues("overload").Inc()
		s.log.Warn("batch refused: in-flight cap reached", "status", 503, "max_inflight", s.cfg.MaxInflight)
		s.unavailable(w, "too many batches in flight, retry later")
		return
	}
	s.m.inflight.Inc()
	defer func() {
		s.inflight.Add(-1)
		s.m.inflight.Dec()
	}()

	b := s.getBatch()
	defer s.putBatch(b) // every publish has returned by then
	body, err := s.readBody(w, r, b.body[:0])
	b.body = body
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBody))
			return
		}
		s.refuse(w, r, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	events, err := event.ScanAppend(b.events[:0], body) // Raw is stored, URL is not read
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	b.events = events
	if len(events) > s.cfg.MaxEvents {
		s.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d events: more than %d in one batch", len(events), s.cfg.MaxEvents))
		return
	}
	// A topic's message is never larger than the body; when the body is larger than one NATS
	// message may be, the topic is split (publish), and an event that cannot fit even alone
	// can never be stored: 413, as for a body over DRAIN_INGEST_MAX_BODY.
	limit := stream.BatchLimit(s.nc.MaxPayload())
	if len(body) > limit {
		for i := range events {
			if n := len(events[i].Raw) + 2; n > limit {
				s.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf(
					"event %d is %d bytes, more than the %d bytes one NATS message can carry (the server's max_payload, %d, less room for headers): the drain can never store it",
					i, n, limit, s.nc.MaxPayload()))
				return
			}
		}
	}
	if len(events) > 0 {
		b.group()
		start := time.Now()
		ctx, span := startPublish(r, len(events), len(b.groups))
		settled, err := s.publish(ctx, b, limit)
		endPublish(span, err)
		if !settled {
			b.keep = true // nats.go may still resend these buffers; let the GC have them
		}
		if err != nil {
			reason := "error"
			if errors.Is(err, stream.ErrAckTimeout) {
				reason = "timeout"
			}
			s.m.publishFail.WithLabelValues(reason).Inc()
			s.log.Warn("batch not stored", "status", 503, "reason", reason, "err", err, "events", len(events), "elapsed", time.Since(start).String())
			s.unavailable(w, "event bus unavailable, retry later")
			return
		}
		s.m.publish.Observe(time.Since(start).Seconds())
		s.count(b.groups)
	}
	s.m.batchEvents.Observe(float64(len(events)))
	s.m.request(http.StatusNoContent)
	w.WriteHeader(http.StatusNoContent)
}

// count adds the events of accepted groups to the events metric, one Add per (topic, type).
// A topic's counter of a type is looked up (and its topic label admitted) the first time it
// counts, then kept with the topic.
func (s *Server) count(groups []group) {
	for i := range groups {
		g := &groups[i]
		for t, n := range g.types {
			if n == 0 {
				continue
			}
			c := g.state.events[t].Load()
			if c == nil {
				c = &counter{s.m.events.WithLabelValues(s.m.topics.Admit(g.topic), string(eventTypes[t]))}
				g.state.events[t].Store(c)
			}
			c.Add(float64(n))
		}
	}
}

// readBody reads the request body into buf, growing it, up to DRAIN_INGEST_MAX_BODY.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	if r.ContentLength >= 0 && int64(cap(buf)) < r.ContentLength+1 {
		buf = make([]byte, 0, r.ContentLength+1) // +1: the read that sees EOF needs room
	}
	for {
		if len(buf) == cap(buf) {
			n := min(max(2*cap(buf), 4096), int(s.cfg.MaxBody)+1)
			if n <= cap(buf) {
				n = cap(buf) + 512
			}
			nb := make([]byte, len(buf), n)
			copy(nb, buf)
			buf = nb
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// publish stores every group of b and returns after the last PubAck, or with an error when
// one failed or DRAIN_INGEST_PUBLISH_TIMEOUT passed (stream.PublishAll). A group whose body is
// larger than limit (stream.BatchLimit) is stored as several messages, each a batch of whole
// consecutive events of the topic within limit, with a Nats-Msg-Id of its own content; every
// event fits alone (receive checked). It reports whether every publish resolved, which tells
// the caller that nats.go no longer holds the group buffers and messages.
func (s *Server) publish(ctx context.Context, b *batch, limit int) (settled bool, err error) {
	if !s.nc.IsConnected() {
		return true, ErrNATSDown
	}
	n := 0
	add := func(subject string, body []byte) {
		b.msg(n, subject, body, stream.MsgID(subject, body))
		n++
	}
	for i := range b.groups {
		g := &b.groups[i]
		g.state = s.topic(g.topic)
		subject := g.state.subject
		if len(g.body) <= limit {
			add(subject, g.body)
			continue
		}
		var topic []event.Event
		for j := range b.events {
			if b.events[j].Topic == g.topic {
				topic = append(topic, b.events[j])
			}
		}
		parts, err := stream.SplitBatch(topic, limit)
		if err != nil {
			return true, fmt.Errorf("split topic %s: %w", g.topic, err)
		}
		for _, p := range parts {
			add(subject, p)
		}
		s.m.splits.Add(float64(len(parts)))
	}
	err = stream.PublishAll(ctx, s.ajs, s.cfg.PublishTimeout, b.msgs[:n])
	var perr *stream.PublishError
	if errors.As(err, &perr) {
		return perr.Settled, err
	}
	return true, err
}
