// Package sweeping is the sweeper service: it takes URLs out of the dirty map in leased batches
// and hands each batch on to <prefix>.swept (an acknowledged JetStream publish) and/or a
// webhook, removing the URLs from the map only once every hand-off succeeded. Any number of
// sweepers may run on one map. See docs/sweeper.md for the guarantees.
package sweeping

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// Config configures a Sweeper.
type Config struct {
	Batch    int           // most URLs per batch (one message, one webhook call); required
	Lease    time.Duration // how long a batch stays leased without renewal; required
	Interval time.Duration // time between sweeps; required
	// Subject is where batches are published (<prefix>.swept); empty means no publishing.
	Subject string
	// WebhookURL receives each batch as a POSTed JSON array; empty means no webhook.
	WebhookURL string
	// ShutdownGrace is how long a batch in progress may keep retrying its hand-off after the
	// context of Run ends; then its URLs are given back to the map (default: the
	// environment's DRAIN_SHUTDOWN_TIMEOUT default).
	ShutdownGrace time.Duration
	// HTTPClient posts to the webhook (default: a client with no redirects).
	HTTPClient *http.Client
}

// Sweeper sweeps one dirty map. Run drives it; Handler serves on-demand sweeps.
type Sweeper struct {
	cfg     Config
	m       *dirty.Map
	js      jetstream.JetStream
	log     *slog.Logger
	met     metrics
	trigger chan chan passResult
	running chan struct{} // closed when Run returns
}

type passResult struct {
	n   int
	err error
}

// New returns a sweeper of m that publishes with js (nil when cfg.Subject is empty). Metrics
// are registered on reg.
func New(cfg Config, m *dirty.Map, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger) (*Sweeper, error) {
	switch {
	case cfg.Batch < 1:
		return nil, fmt.Errorf("sweeper: batch %d must be at least 1", cfg.Batch)
	case cfg.Lease < 100*time.Millisecond:
		return nil, fmt.Errorf("sweeper: lease %v must be at least 100ms", cfg.Lease)
	case cfg.Interval <= 0:
		return nil, fmt.Errorf("sweeper: interval %v must be positive", cfg.Interval)
	case cfg.Subject == "" && cfg.WebhookURL == "":
		return nil, errors.New("sweeper: neither a subject nor a webhook: swept URLs would have nowhere to go")
	case cfg.Subject != "" && js == nil:
		return nil, errors.New("sweeper: a subject needs a JetStream context")
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = config.Default(config.Sweeper).ShutdownTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Sweeper{cfg: cfg, m: m, js: js, log: log, met: met,
		trigger: make(chan chan passResult), running: make(chan struct{})}, nil
}

// Run sweeps at once, then every Interval and whenever Handler asks, until ctx ends. When
// another process holds leases, it also wakes when the earliest one expires, so a dead
// sweeper's URLs are handed on promptly (and inside the JetStream duplicate window, see
// docs/sweeper.md). A batch in progress when ctx ends is finished (within ShutdownGrace).
func (s *Sweeper) Run(ctx context.Context) error {
	defer close(s.running)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		var reply chan passResult
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case reply = <-s.trigger:
		}
		n, err := s.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("sweep failed", "err", err, "handed_on", n)
		}
		if reply != nil {
			reply <- passResult{n, err}
		}
		if ctx.Err() != nil {
			return nil
		}
		next := s.nextWake(ctx)
		if err != nil {
			// Redis or the target is down (or failing over): probe every second, so the
			// sweeper resumes about a second after it is back.
			next = min(next, outageProbe)
		}
		timer.Reset(next)
	}
}

// outageProbe is how soon a pass is tried again after one failed.
const outageProbe = time.Second

// nextWake is the interval, or sooner when a lease another process holds expires sooner.
func (s *Sweeper) nextWake(ctx context.Context) time.Duration {
	next := s.cfg.Interval
	d, ok, err := s.m.NextExpiry(ctx)
	if err == nil && ok {
		next = min(next, max(d+20*time.Millisecond, 50*time.Millisecond))
	}
	return next
}

// Pass sweeps until no dirty URL is free (or ctx ends) and returns how many URLs it handed on.
// URLs dirtied during the pass are swept in it too.
func (s *Sweeper) Pass(ctx context.Context) (int, error) {
	start := time.Now()
	s.met.sweeps.Inc()
	defer func() {
		s.met.duration.Observe(time.Since(start).Seconds())
		s.updateSize(ctx)
	}()
	total := 0
	for ctx.Err() == nil {
		urls, tok, err := s.m.Lease(ctx, s.cfg.Batch, s.cfg.Lease)
		if err != nil {
			return total, err
		}
		if len(urls) == 0 {
			break
		}
		n, err := s.batch(ctx, tok, urls)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Sweeper) updateSize(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if n, err := s.m.Count(ctx); err == nil {
		s.met.size.Set(float64(n))
	}
}

// Body returns the message body of a batch: the URLs sorted, as a JSON array with no HTML
// escaping. Sorting makes it depend on the set of URLs only, so a batch leased again after
// its holder died encodes identically.
func Body(urls []string) []byte {
	sorted := slices.Sorted(slices.Values(urls))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(sorted)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// MsgID returns the Nats-Msg-Id (and webhook Idempotency-Key) of a batch: "swept-", the lease's
// batch id, "-", and a hash of the subject and body. It is the same for every generation of
// one batch, so a batch re-sent after its holder died is recognisably the same message.
func MsgID(subject string, tok dirty.Token, body []byte) string {
	return "swept-" + tok.Batch() + "-" + stream.MsgID(subject, body)
}

// batch hands one leased batch on, retrying with backoff while renewing the lease, then
// completes it. It returns how many URLs left the map.
func (s *Sweeper) batch(ctx context.Context, tok dirty.Token, urls []string) (int, error) {
	// The batch outlives ctx by at most ShutdownGrace: SIGTERM finishes the current batch.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(s.cfg.ShutdownGrace, cancel)
		context.AfterFunc(bctx, func() { t.Stop() })
	})
	defer stop()

	if tok.Generation() > 0 {
		s.met.recovered.Inc()
		s.log.Info("took over an expired batch", "batch", tok.Batch(), "generation", tok.Generation(), "urls", len(urls))
	}
	body := Body(urls)
	id := MsgID(s.cfg.Subject, tok, body)
	publish, post := s.cfg.Subject != "", s.cfg.WebhookURL != ""
	attemptTimeout := min(max(s.cfg.Lease/4, 100*time.Millisecond), 10*time.Second)
	maxBackoff := min(max(s.cfg.Lease/3, 100*time.Millisecond), 30*time.Second)
	backoff := min(250*time.Millisecond, maxBackoff)
	for {
		if publish {
			if err := s.publish(bctx, attemptTimeout, body, id); err != nil {
				s.met.failures.WithLabelValues("jetstream").Inc()
				s.log.Warn("publish of swept batch failed; retrying", "batch", tok.Batch(), "err", err)
			} else {
				publish = false
			}
		}
		if post && !publish {
			if err := s.post(bctx, attemptTimeout, body, id); err != nil {
				s.met.failures.WithLabelValues("webhook").Inc()
				s.log.Warn("webhook failed; retrying", "batch", tok.Batch(), "err", err)
			} else {
				post = false
			}
		}
		if !publish && !post {
			break
		}
		select {
		case <-bctx.Done():
			return 0, s.giveBack(ctx, tok, urls, errors.New("hand-off still failing at shutdown"))
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
		held, err := s.m.Renew(bctx, tok, s.cfg.Lease, urls...)
		if err != nil {
			s.log.Warn("lease renewal failed", "batch", tok.Batch(), "err", err)
			continue
		}
		if len(held) < len(urls) {
			// Our lease expired and another sweeper took the batch (or its URLs): it hands them on.
			s.met.lostLeases.Inc()
			s.log.Warn("lease lost during retries; leaving the batch to its new holder", "batch", tok.Batch(), "held", len(held), "urls", len(urls))
			_, _ = s.m.Release(bctx, tok, held...)
			return 0, nil
		}
	}
	done, err := s.complete(bctx, tok, urls)
	if err != nil {
		return 0, err
	}
	s.met.batches.Inc()
	s.met.handed.Add(float64(len(urls)))
	if len(done) < len(urls) {
		s.met.lostLeases.Inc()
		s.log.Warn("lease expired before the hand-off completed; the batch may be handed on again under the same id",
			"batch", tok.Batch(), "urls", len(urls), "completed", len(done))
	}
	return len(done), nil
}

// complete removes the handed-on URLs from the map. The hand-off already happened, so a Redis
// outage (stream.IsRedisOutage) is waited out for up to one lease, retrying with backoff: a
// batch left leased would be handed on again (under the same id) once its lease expires. Any
// other failure is returned at once.
func (s *Sweeper) complete(ctx context.Context, tok dirty.Token, urls []string) ([]string, error) {
	deadline := time.Now().Add(s.cfg.Lease)
	backoff := 50 * time.Millisecond
	for {
		done, err := s.m.Complete(ctx, tok, urls...)
		if err == nil {
			return done, nil
		}
		if !stream.IsRedisOutage(err) || time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("complete batch %s: %w", tok.Batch(), err)
		}
		s.log.Warn("completing a handed-on batch failed; retrying", "batch", tok.Batch(), "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("complete batch %s: %w", tok.Batch(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *Sweeper) giveBack(ctx context.Context, tok dirty.Token, urls []string, cause error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.m.Release(rctx, tok, urls...); err != nil {
		return errors.Join(cause, fmt.Errorf("give back batch %s (its lease will expire instead): %w", tok.Batch(), err))
	}
	return cause
}

func (s *Sweeper) publish(ctx context.Context, timeout time.Duration, body []byte, id string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg := nats.NewMsg(s.cfg.Subject)
	msg.Data = body
	msg.Header.Set("Content-Type", "application/json")
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if err != nil {
		return err
	}
	if ack.Duplicate {
		s.met.duplicates.Inc()
	}
	return nil
}

// StatusError is a webhook answer other than 2xx.
type StatusError struct {
	Code int
	Body string // at most 200 bytes of the answer
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("webhook answered %d: %s", e.Code, e.Body)
}

func (s *Sweeper) post(ctx context.Context, timeout time.Duration, body []byte, id string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("User-Agent", "routemaster-drain-sweeper")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Code: resp.StatusCode, Body: string(snippet)}
	}
	return nil
}

// Handler serves POST /sweep: it runs a sweep now (serialised with the timer's) and answers
// 200 with {"handed_on":N} when it ends, 500 with {"error":...,"handed_on":N} when it failed,
// or 503 when the sweeper is stopping.
func (s *Sweeper) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		reply := make(chan passResult, 1)
		select {
		case s.trigger <- reply:
		case <-s.running:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"stopping"}`)
			return
		case <-r.Context().Done():
			return
		}
		select {
		case res := <-reply:
			if res.err != nil {
				w.WriteHeader(http.StatusInternalServerError)
				_ = json.NewEncoder(w).Encode(map[string]any{"error": res.err.Error(), "handed_on": res.n})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"handed_on": res.n})
		case <-r.Context().Done():
		}
	})
}
