// Package sweeping is the sweeper service: it takes URLs out of the dirty map in leased batches
// and hands each batch on to <prefix>.swept (an acknowledged JetStream publish) and/or a
// webhook, removing the URLs from the map only once every hand-off succeeded. A batch the
// webhook refuses is split to isolate the URLs it refuses; each of them is offered again
// after a backoff and dead-lettered after MaxRefusals refusals, so one URL never blocks a
// sweep. Any number of sweepers may run on one map. See docs/sweeper.md for the guarantees.
package sweeping

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

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

	// DeadLetters is the subject of the URLs the webhook kept refusing (<prefix>.dlq.sweep);
	// required with a WebhookURL, as are the JetStream context and the Redis client.
	DeadLetters string
	// MaxRefusals is how many times the webhook may refuse one URL before the URL is
	// dead-lettered and leaves the map (DRAIN_MAX_DELIVER; default the environment's).
	MaxRefusals int
	// RefusalBackoff is how long a refused URL stays out of the map before it is offered
	// again, doubled per refusal up to RefusalBackoffMax (DRAIN_RETRY_BACKOFF,
	// DRAIN_RETRY_BACKOFF_MAX; defaults the environment's).
	RefusalBackoff, RefusalBackoffMax time.Duration
	// Namespace is the dirty map's namespace, under which the refusal counts live
	// (RefusalsKey; default config.DefaultNamespace).
	Namespace string
}

// RefusalsKey is the Redis hash counting, per URL, how often the webhook refused it: a HASH
// url -> count, expiring RefusalTTL after the last refusal. A URL's count is deleted when it
// is handed on or dead-lettered.
func RefusalsKey(namespace string) string { return "{" + namespace + "}:sweeper:refusals" }

// RefusalTTL is how long refusal counts outlive the last refusal.
const RefusalTTL = 24 * time.Hour

// Sweeper sweeps one dirty map. Run drives it; Handler serves on-demand sweeps.
type Sweeper struct {
	cfg     Config
	m       *dirty.Map
	rdb     redis.UniversalClient // the dirty map's Redis, for the refusal counts
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

// New returns a sweeper of m (on rdb) that publishes and dead-letters with js (which may be
// nil when cfg has neither a Subject nor a WebhookURL). Metrics are registered on reg.
func New(cfg Config, m *dirty.Map, rdb redis.UniversalClient, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger) (*Sweeper, error) {
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
	case cfg.WebhookURL != "" && (js == nil || rdb == nil || cfg.DeadLetters == ""):
		return nil, errors.New("sweeper: a webhook needs a JetStream context, a dead-letter subject and the Redis client (for the URLs it refuses)")
	}
	def := config.Default(config.Sweeper) // the defaults live in config's variable table only
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = def.ShutdownTimeout
	}
	if cfg.MaxRefusals <= 0 {
		cfg.MaxRefusals = def.Consumer.MaxDeliver
	}
	if cfg.RefusalBackoff <= 0 {
		cfg.RefusalBackoff = def.Consumer.RetryBackoff
	}
	if cfg.RefusalBackoffMax <= 0 {
		cfg.RefusalBackoffMax = def.Consumer.RetryBackoffMax
	}
	cfg.RefusalBackoffMax = max(cfg.RefusalBackoffMax, cfg.RefusalBackoff)
	if cfg.Namespace == "" {
		cfg.Namespace = config.DefaultNamespace
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Sweeper{cfg: cfg, m: m, rdb: rdb, js: js, log: log, met: met,
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

// batch hands one leased batch on, retrying failures with backoff while renewing the lease,
// then completes it. A batch the webhook refuses is split in two, again and again, until the
// URLs it refuses are alone: the others are handed on, each refused URL is offered again
// after a backoff or dead-lettered (refuse). It returns how many URLs were handed on and left
// the map.
func (s *Sweeper) batch(ctx context.Context, tok dirty.Token, urls []string) (handed int, err error) {
	ctx, span := startHandoff(ctx, tok, len(urls))
	defer func() { endHandoff(span, handed, err) }()
	// The batch outlives ctx by at most ShutdownGrace: SIGTERM finishes the current batch.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(s.cfg.ShutdownGrace, cancel)
		context.AfterFunc(bctx, func() { t.Stop() })
	})
	defer stop()

	if tok.Generation() > 0 {
		s.tookOver(bctx, tok, urls)
	}
	urls = slices.Sorted(slices.Values(urls)) // the halves of a split are the same in every generation
	body := Body(urls)
	id := MsgID(s.cfg.Subject, tok, body)
	publish := s.cfg.Subject != ""
	var posts [][]string // parts still to POST
	if s.cfg.WebhookURL != "" {
		posts = [][]string{urls}
	}
	var accepted []string
	refused := map[string]error{}
	attemptTimeout := min(max(s.cfg.Lease/4, 100*time.Millisecond), 10*time.Second)
	maxBackoff := min(max(s.cfg.Lease/3, 100*time.Millisecond), 30*time.Second)
	backoff := min(250*time.Millisecond, maxBackoff)
	for {
		failed := false
		if publish {
			if err := s.publish(bctx, attemptTimeout, body, id); err != nil {
				s.met.failures.WithLabelValues("jetstream").Inc()
				s.log.Warn("publish of swept batch failed; retrying", "batch", tok.Batch(), "err", err)
				failed = true
			} else {
				publish = false
			}
		}
		if !publish && len(posts) > 0 {
			var next [][]string
			for _, part := range posts {
				pb := Body(part)
				err := s.post(bctx, attemptTimeout, pb, MsgID(s.cfg.Subject, tok, pb))
				switch {
				case err == nil:
					accepted = append(accepted, part...)
				case !Refusal(err):
					s.met.failures.WithLabelValues("webhook").Inc()
					s.log.Warn("webhook failed; retrying", "batch", tok.Batch(), "urls", len(part), "err", err)
					failed = true
					next = append(next, part)
				case len(part) == 1:
					refused[part[0]] = err
				default:
					s.log.Debug("webhook refused part of a batch; splitting it", "batch", tok.Batch(), "urls", len(part), "err", err)
					next = append(next, part[:len(part)/2], part[len(part)/2:])
				}
			}
			posts = next
		}
		if !publish && len(posts) == 0 {
			break
		}
		if failed {
			select {
			case <-bctx.Done():
				s.finishAccepted(ctx, tok, accepted)
				return 0, s.giveBack(ctx, tok, without(urls, accepted), errors.New("hand-off still failing at shutdown"))
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, maxBackoff)
		}
		held, err := s.m.Renew(bctx, tok, s.cfg.Lease, urls...)
		if err != nil {
			s.log.Warn("lease renewal failed", "batch", tok.Batch(), "err", err)
			continue
		}
		if len(held) < len(urls) {
			// Our lease expired and another sweeper took the batch (or its URLs): it hands them on.
			s.met.lostLeases.Inc()
			s.log.Warn("lease lost during retries; leaving the batch to its new holder", "batch", tok.Batch(), "held", len(held), "urls", len(urls))
			s.finishAccepted(ctx, tok, accepted)
			_, _ = s.m.Release(bctx, tok, without(held, accepted)...)
			return 0, nil
		}
	}
	if s.cfg.WebhookURL == "" {
		accepted = urls // published
	}
	dead := s.refuse(bctx, tok, refused)
	if len(accepted)+len(dead) == 0 {
		return 0, nil // every URL refused: each comes back after its backoff
	}
	done, err := s.complete(bctx, tok, append(slices.Clone(accepted), dead...))
	if err != nil {
		return 0, err
	}
	s.forgetRefusals(bctx, accepted, dead)
	handed = len(without(done, dead))
	s.met.batches.Inc()
	s.met.handed.Add(float64(handed))
	if len(done) < len(accepted)+len(dead) {
		s.met.lostLeases.Inc()
		s.log.Warn("lease expired before the hand-off completed; the batch may be handed on again under the same id",
			"batch", tok.Batch(), "urls", len(urls), "completed", len(done))
	}
	return handed, nil
}

// tookOver accounts for a batch leased again after its lease expired: a dead or stalled
// holder's batch, or URLs the webhook refused whose backoff ended (their parked lease expired
// with the batch still whole).
func (s *Sweeper) tookOver(ctx context.Context, tok dirty.Token, urls []string) {
	if s.rdb != nil && s.cfg.WebhookURL != "" {
		counts, err := s.rdb.HMGet(ctx, RefusalsKey(s.cfg.Namespace), urls...).Result()
		if err == nil && !slices.Contains(counts, nil) {
			s.log.Debug("offering refused URLs to the webhook again", "batch", tok.Batch(), "urls", len(urls))
			return
		}
	}
	s.met.recovered.Inc()
	s.log.Info("took over an expired batch", "batch", tok.Batch(), "generation", tok.Generation(), "urls", len(urls))
}

// Refusal reports whether err is the webhook refusing the URLs it was sent: a 4xx other than
// those that say the request cannot be delivered whatever it holds (401, 403, 404, 405, 407:
// credentials, endpoint or method; 408 and 429: try later), which are retried like a 5xx.
func Refusal(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) || se.Code < 400 || se.Code > 499 {
		return false
	}
	switch se.Code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusProxyAuthRequired, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return true
}

// refuse counts one more refusal of each URL the webhook refused, alone. A URL refused
// MaxRefusals times is dead-lettered on DeadLetters and returned (it leaves the map with the
// batch); any other stays leased for its backoff, RefusalBackoff doubled per refusal, and
// then returns to the map for the next sweep (of any sweeper). Nothing here blocks the sweep.
func (s *Sweeper) refuse(ctx context.Context, tok dirty.Token, refused map[string]error) (dead []string) {
	for _, u := range slices.Sorted(maps.Keys(refused)) {
		cause := refused[u]
		s.met.refusals.Inc()
		n, err := s.countRefusal(ctx, u)
		if err != nil {
			s.log.Warn("counting a webhook refusal failed; the URL returns when its lease expires", "url", redact(u), "err", err)
			continue
		}
		if n >= int64(s.cfg.MaxRefusals) {
			l := stream.Letter{Data: Body([]string{u}), Header: nats.Header{"Content-Type": {"application/json"}}, ID: stream.MsgID(s.cfg.DeadLetters, []byte(u))}
			if err := stream.DeadLetterData(ctx, s.js, s.cfg.DeadLetters, l, cause, uint64(n)); err != nil {
				s.log.Warn("dead-lettering a refused URL failed; retrying it later", "url", redact(u), "err", err)
				s.park(ctx, tok, u, n)
				continue
			}
			s.met.deadLetters.Inc()
			s.log.Error("the webhook refused a URL too often; it went to the dead letters", "url", redact(u), "refusals", n, "err", cause)
			dead = append(dead, u)
			continue
		}
		s.park(ctx, tok, u, n)
		s.log.Warn("the webhook refused a URL; offering it again later", "url", redact(u), "refusals", n, "max", s.cfg.MaxRefusals, "err", cause)
	}
	return dead
}

// park keeps u leased for the backoff of its n-th refusal; its lease then expires and u goes
// back into the map.
func (s *Sweeper) park(ctx context.Context, tok dirty.Token, u string, n int64) {
	d := s.cfg.RefusalBackoff
	for i := int64(1); i < n && d < s.cfg.RefusalBackoffMax; i++ {
		d *= 2
	}
	if _, err := s.m.Renew(ctx, tok, min(d, s.cfg.RefusalBackoffMax), u); err != nil {
		s.log.Warn("parking a refused URL failed; it returns when its lease expires", "url", redact(u), "err", err)
	}
}

func (s *Sweeper) countRefusal(ctx context.Context, u string) (int64, error) {
	key := RefusalsKey(s.cfg.Namespace)
	var n *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.HIncrBy(ctx, key, u, 1)
		p.PExpire(ctx, key, RefusalTTL)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count refusal: %w", err)
	}
	return n.Val(), nil
}

// forgetRefusals deletes the refusal counts of URLs that left the map. A failure only leaves
// counts to expire (RefusalTTL).
func (s *Sweeper) forgetRefusals(ctx context.Context, lists ...[]string) {
	if s.rdb == nil || s.cfg.WebhookURL == "" {
		return
	}
	all := slices.Concat(lists...)
	if len(all) == 0 {
		return
	}
	if err := s.rdb.HDel(ctx, RefusalsKey(s.cfg.Namespace), all...).Err(); err != nil {
		s.log.Debug("forgetting refusal counts failed; they expire instead", "err", err)
	}
}

// finishAccepted completes the URLs the webhook accepted before a batch was abandoned, so
// they are not handed on again.
func (s *Sweeper) finishAccepted(ctx context.Context, tok dirty.Token, accepted []string) {
	if len(accepted) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if done, err := s.m.Complete(cctx, tok, accepted...); err == nil {
		s.met.handed.Add(float64(len(done)))
		s.forgetRefusals(cctx, done)
	}
}

// without returns the members of a not in b.
func without(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	drop := make(map[string]bool, len(b))
	for _, x := range b {
		drop[x] = true
	}
	var out []string
	for _, x := range a {
		if !drop[x] {
			out = append(out, x)
		}
	}
	return out
}

// redact hides a password in a URL for the logs.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
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
	stream.InjectTrace(ctx, msg.Header)
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
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
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
