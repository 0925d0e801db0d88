// Package status gathers the state of one drain deployment: its streams and their consumers
// (JetStream), its dead letters by stage, its dirty map (Redis), and the readiness and circuit
// breakers of its services (their admin addresses). `drainctl status` prints a Status and the
// web console renders the same one, so the two never disagree.
package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// MaxConsumers bounds how many consumers of one stream a Status lists.
const MaxConsumers = 1000

// MaxBody bounds the part of a /readyz answer a Status keeps.
const MaxBody = 512

// Sources are what Gather reads.
type Sources struct {
	JS     jetstream.JetStream // the deployment's JetStream
	Names  stream.Names        // its stream, subject and consumer names (DRAIN_PREFIX)
	Dirty  *dirty.Map          // its dirty map (ROUTEMASTER_DRAIN_REDIS)
	Admins []config.AdminURL   // its services' admin addresses (DRAIN_STATUS_ADMIN_URLS)
	// HTTP is the client of the admin requests; nil means one with a 2 s timeout.
	HTTP *http.Client
}

func (s Sources) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return defaultClient
}

var defaultClient = &http.Client{Timeout: 2 * time.Second}

// Status is the state of one deployment at one instant. Its JSON form is what
// `drainctl status --json` prints and the console's /api/status serves (docs/drainctl.md).
type Status struct {
	Time               time.Time     `json:"time"`
	Prefix             string        `json:"prefix"`
	Streams            []Stream      `json:"streams"`
	Consumers          []Consumer    `json:"consumers"`
	DeadLetters        uint64        `json:"dead_letters"`          // every stage
	DeadLettersByStage []StageLetter `json:"dead_letters_by_stage"` // stages holding any
	Dirty              int64         `json:"dirty"`                 // dirty.Map.Count: marked or leased
	Leased             int64         `json:"leased"`                // dirty.Map.Leased
	Services           []Service     `json:"services"`              // one per DRAIN_STATUS_ADMIN_URLS entry
}

// Stream is one of the drain's streams.
type Stream struct {
	Name      string `json:"name"`
	Messages  uint64 `json:"messages"`
	Bytes     uint64 `json:"bytes"`
	LastSeq   uint64 `json:"last_seq"`
	Consumers int    `json:"consumers"`
	Missing   bool   `json:"missing,omitempty"` // the stream does not exist
	// Rate is messages stored per second since the previous sample (Rates.Apply); absent
	// without one, as in `drainctl status`.
	Rate *float64 `json:"rate,omitempty"`
}

// Consumer is one durable consumer of a drain stream: the drain's own stages and any an app
// added.
type Consumer struct {
	Name        string `json:"name"`
	Stream      string `json:"stream"`
	Stage       string `json:"stage"`        // the <prefix>.dlq.<stage> its dead letters go to
	Pending     uint64 `json:"pending"`      // NumPending: stored, not yet delivered (the backlog)
	AckPending  int    `json:"ack_pending"`  // NumAckPending: delivered, not yet acknowledged
	Redelivered int    `json:"redelivered"`  // NumRedelivered: ack-pending ones delivered more than once
	Waiting     int    `json:"waiting"`      // NumWaiting: pull requests waiting
	Delivered   uint64 `json:"delivered"`    // deliveries so far (consumer sequence), redeliveries included
	DeadLetters uint64 `json:"dead_letters"` // dead letters of its stage
	// Rate is deliveries per second since the previous sample (Rates.Apply); absent without
	// one.
	Rate *float64 `json:"rate,omitempty"`
}

// StageLetter is the number of dead letters on one <prefix>.dlq.<stage>.
type StageLetter struct {
	Stage   string `json:"stage"`
	Subject string `json:"subject"`
	Count   uint64 `json:"count"`
}

// Service is the readiness of one service, as its admin address's /readyz answered.
type Service struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Ready  bool   `json:"ready"`           // answered 2xx
	Code   int    `json:"status"`          // HTTP status, 0 without an answer
	Body   string `json:"body"`            // the answer, at most MaxBody bytes, trimmed
	Error  string `json:"error,omitempty"` // why there was no answer
	Millis int64  `json:"ms"`              // how long the request took
}

// StageOf returns the dead-letter stage of a consumer named durable: the drain's own consumers
// use a short stage (<prefix>_filter: filter, <prefix>_warm_<queue>: warm); any other
// consumer's stage is its durable name (stream.ConsumerConfig's default).
func StageOf(n stream.Names, durable string) string {
	switch {
	case durable == n.Durable("filter"):
		return "filter"
	case strings.HasPrefix(durable, n.Durable("warm_")):
		return "warm"
	}
	return durable
}

// Gather reads the deployment's state. It fails when JetStream or the drain's Redis cannot be
// read; a service that does not answer is reported in Services, not as an error. It costs one
// JetStream request per stream, one per 256 consumers, one for the dead letters, one Redis
// round trip and one HTTP request per admin address, the last in parallel.
func Gather(ctx context.Context, src Sources) (*Status, error) {
	st := &Status{Time: time.Now().UTC(), Prefix: src.Names.Prefix}
	var wg sync.WaitGroup
	st.Services = make([]Service, len(src.Admins))
	for i, a := range src.Admins {
		wg.Go(func() { st.Services[i] = readiness(ctx, src.client(), a) })
	}
	err := gatherStreams(ctx, src, st)
	if err == nil {
		err = gatherDirty(ctx, src, st)
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return st, nil
}

func gatherStreams(ctx context.Context, src Sources, st *Status) error {
	st.Streams = []Stream{}
	st.Consumers = []Consumer{}
	st.DeadLettersByStage = []StageLetter{}
	for _, k := range stream.Kinds {
		name := src.Names.Stream(k)
		s, err := src.JS.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			st.Streams = append(st.Streams, Stream{Name: name, Missing: true})
			continue
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		info := s.CachedInfo()
		st.Streams = append(st.Streams, Stream{Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
			LastSeq: info.State.LastSeq, Consumers: info.State.Consumers})
		if k == stream.DLQ {
			if err := gatherDeadLetters(ctx, src, st); err != nil {
				return err
			}
		}
		lister := s.ListConsumers(ctx)
		var cons []Consumer
		for ci := range lister.Info() {
			if len(cons) == MaxConsumers {
				continue
			}
			cons = append(cons, Consumer{Name: ci.Name, Stream: name, Stage: StageOf(src.Names, ci.Name),
				Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered,
				Waiting: ci.NumWaiting, Delivered: ci.Delivered.Consumer})
		}
		if err := lister.Err(); err != nil {
			return fmt.Errorf("consumers of %s: %w", name, err)
		}
		slices.SortFunc(cons, func(a, b Consumer) int { return strings.Compare(a.Name, b.Name) })
		st.Consumers = append(st.Consumers, cons...)
	}
	for i, c := range st.Consumers {
		for _, d := range st.DeadLettersByStage {
			if d.Stage == c.Stage {
				st.Consumers[i].DeadLetters = d.Count
			}
		}
	}
	return nil
}

func gatherDeadLetters(ctx context.Context, src Sources, st *Status) error {
	dlq, err := stream.OpenDeadLetters(ctx, src.JS, src.Names)
	if err != nil {
		return err
	}
	counts, err := dlq.CountByStage(ctx)
	if err != nil {
		return err
	}
	for _, c := range counts {
		st.DeadLetters += c.Count
		st.DeadLettersByStage = append(st.DeadLettersByStage, StageLetter{Stage: c.Stage, Subject: c.Subject, Count: c.Count})
	}
	return nil
}

func gatherDirty(ctx context.Context, src Sources, st *Status) error {
	var err error
	if st.Dirty, err = src.Dirty.Count(ctx); err != nil {
		return err
	}
	st.Leased, err = src.Dirty.Leased(ctx)
	return err
}

func readiness(ctx context.Context, client *http.Client, a config.AdminURL) Service {
	s := Service{Name: a.Name, URL: a.URL}
	start := time.Now()
	code, body, err := get(ctx, client, a.URL+"/readyz", MaxBody)
	s.Millis = time.Since(start).Milliseconds()
	if err != nil {
		s.Error = err.Error()
		return s
	}
	s.Code, s.Body, s.Ready = code, strings.TrimSpace(string(body)), code/100 == 2
	return s
}

// get GETs url and returns the status and at most limit bytes of the body.
func get(ctx context.Context, client *http.Client, url string, limit int64) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, limit))
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return res.StatusCode, body, nil
}
