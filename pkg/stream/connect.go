package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect opens a NATS connection with the server, client name, credentials and TLS files
// of o, and returns it with its JetStream context (bounded by o.PublishAsyncTimeout and
// o.PublishAsyncMaxPending when set). The connection reconnects forever (a drain process
// outlives NATS restarts); disconnections and reconnections are logged to o.Log, and so is a
// server that cannot be reached (its address and why, at most every 30 s). It fails on
// invalid options or when a credentials or TLS file cannot be used; a server that is down is
// retried in the background, not an error.
func Connect(o ConnectOptions) (*nats.Conn, jetstream.JetStream, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, nil, err
	}
	log := o.Log
	var lastUnreachable atomic.Int64 // Unix ns of the last "cannot reach" line
	natsOpts := []nats.Option{
		nats.ReconnectErrHandler(func(c *nats.Conn, err error) {
			if now := time.Now().UnixNano(); now-lastUnreachable.Load() >= int64(30*time.Second) {
				lastUnreachable.Store(now)
				log.Warn("nats unreachable; retrying", "err", notConnected(c), "cause", err)
			}
		}),
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1), // fail publishes fast while disconnected instead of buffering them
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil when the connection was closed on purpose
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ConnectHandler(func(c *nats.Conn) { // the first connection, when it came late
			lastUnreachable.Store(0)
			log.Info("nats connected", "server", c.ConnectedUrlRedacted())
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			lastUnreachable.Store(0)
			log.Info("nats reconnected", "server", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("nats async error", "subject", subject, "err", err)
		}),
	}
	if o.Creds != "" {
		natsOpts = append(natsOpts, nats.UserCredentials(o.Creds))
	}
	if o.TLSCA != "" {
		natsOpts = append(natsOpts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		natsOpts = append(natsOpts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	nc, err := nats.Connect(o.URL, natsOpts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	var jsOpts []jetstream.JetStreamOpt
	if o.PublishAsyncTimeout > 0 {
		jsOpts = append(jsOpts, jetstream.WithPublishAsyncTimeout(o.PublishAsyncTimeout))
	}
	if o.PublishAsyncMaxPending > 0 {
		jsOpts = append(jsOpts, jetstream.WithPublishAsyncMaxPending(o.PublishAsyncMaxPending))
	}
	js, err := jetstream.New(nc, jsOpts...)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// StreamConfig returns the configuration the drain declares for the stream of kind k under
// o (zero fields of o take their defaults; Declare also validates o). It carries a Description
// and the Metadata MetadataVersion, MetadataStage (the kind) and MetadataPrefix. Dead letters are kept
// until replayed (StreamOptions.DLQMaxAge, forever by default) within DLQMaxBytes; a full DLQ
// refuses new dead letters, so the consumer keeps retrying the message instead of JetStream
// dropping an old one.
func StreamConfig(o StreamOptions, k Kind) jetstream.StreamConfig {
	s := o.withDefaults()
	n := s.Names()
	storage := jetstream.FileStorage
	if s.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	if k == DLQ {
		return jetstream.StreamConfig{
			Name:        n.Stream(k),
			Description: "routemaster-drain dead letters of every stage (" + n.Subject(k, ">") + ")",
			Metadata:    metadata(s.Prefix, string(k)),
			Subjects:    n.Subjects(k),
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      s.DLQMaxAge,
			MaxBytes:    s.DLQMaxBytes,
			Storage:     storage,
			Replicas:    s.Replicas,
			Duplicates:  s.DuplicateWindow,
			Discard:     jetstream.DiscardNew,
		}
	}
	return jetstream.StreamConfig{
		Name:        n.Stream(k),
		Description: "routemaster-drain " + string(k) + " (" + strings.Join(n.Subjects(k), ", ") + ")",
		Metadata:    metadata(s.Prefix, string(k)),
		Subjects:    n.Subjects(k),
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.MaxAge,
		Storage:     storage,
		Replicas:    s.Replicas,
		Duplicates:  s.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// FailuresConfig returns the configuration of the key-value bucket that keeps the delivery
// budget of every consumer (see the package documentation): one value per key, kept at most
// as long as the streams keep messages.
func FailuresConfig(o StreamOptions) jetstream.KeyValueConfig {
	s := o.withDefaults()
	storage := jetstream.FileStorage
	if s.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	return jetstream.KeyValueConfig{
		Bucket:      s.Names().FailuresBucket(),
		Description: failuresDescription,
		History:     1,
		TTL:         s.MaxAge,
		Storage:     storage,
		Replicas:    s.Replicas,
	}
}

// Declare declares every drain stream under o.Prefix (o.Names()) and the failures bucket as
// o.Manage says (DRAIN_STREAM_MANAGE; see Manage): by default it creates the missing ones and
// leaves the others as they are, logging with slog.Default what differs from o; ManageUpdate
// updates them to o. It is idempotent and safe to run from every replica of every service at
// start. With ManageNone it only checks, and its error names everything missing (errors.Is
// ErrNotDeclared). Invalid options are an error before anything is declared.
func Declare(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	return declare(ctx, js, o, slog.Default())
}

// declare is Declare with a logger for the differences ManageCreate and ManageNone find.
func declare(ctx context.Context, js jetstream.JetStream, o StreamOptions, log *slog.Logger) error {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return err
	}
	n := o.Names()
	// All at once: on a cluster each stream's replicas are placed and elect a leader, which
	// takes a moment per stream; one after another they add up.
	errs := make([]error, len(Kinds)+1)
	var wg sync.WaitGroup
	for i, k := range Kinds {
		wg.Go(func() { errs[i] = declareStream(ctx, js, o.Manage, StreamConfig(o, k), log) })
	}
	wg.Go(func() { errs[len(Kinds)] = declareBucket(ctx, js, o.Manage, FailuresConfig(o), log) })
	wg.Wait()
	var missing []string
	var failed []error
	for i, err := range errs {
		what := "bucket " + n.FailuresBucket()
		if i < len(Kinds) {
			what = "stream " + n.Stream(Kinds[i])
		}
		switch {
		case errors.Is(err, ErrNotDeclared):
			missing = append(missing, what)
		case err != nil:
			failed = append(failed, err)
		}
	}
	if len(missing) > 0 {
		failed = append(failed, fmt.Errorf("%s %w", strings.Join(missing, ", "), ErrNotDeclared))
	}
	return errors.Join(failed...)
}

// declareCallTimeout bounds one JetStream API call of declareStream. Two processes creating
// the same stream at the same moment on a cluster can both wait for an answer that never
// comes (seen with nats-server 2.10 to 2.12); a short bound and a retry that finds the stream
// ends that in a second instead of a client timeout.
const declareCallTimeout = 2 * time.Second

// declareStream declares the stream of cfg as mode says, looking it up first and retrying a
// call that timed out or a create that lost a race (with a random pause, so two racing
// processes do not collide again) until ctx ends. ErrNotDeclared (ManageNone, missing) is
// returned as it is.
func declareStream(ctx context.Context, js jetstream.JetStream, mode Manage, cfg jetstream.StreamConfig, log *slog.Logger) error {
	for {
		err := declareStreamOnce(ctx, js, mode, cfg, log)
		if errors.Is(err, ErrNotDeclared) {
			return err
		}
		if err == nil || ctx.Err() != nil || !retryableDeclare(err) {
			if err != nil {
				return fmt.Errorf("declare stream %s: %w", cfg.Name, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("declare stream %s: %w", cfg.Name, err)
		case <-time.After(100*time.Millisecond + rand.N(400*time.Millisecond)):
		}
	}
}

// Ready reports nil when the connection is up and every drain stream, the failures bucket and
// the given consumers exist. Otherwise its error names the servers it cannot reach, or
// everything that is missing.
func Ready(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, n Names, consumers ...ConsumerConfig) error {
	if !nc.IsConnected() {
		return notConnected(nc)
	}
	var missing []string
	check := func(what string, err error, notFound error) error {
		switch {
		case errors.Is(err, notFound):
			missing = append(missing, what)
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	for _, k := range Kinds {
		_, err := js.Stream(ctx, n.Stream(k))
		if err := check("stream "+n.Stream(k), err, jetstream.ErrStreamNotFound); err != nil {
			return err
		}
	}
	_, err := js.KeyValue(ctx, n.FailuresBucket())
	if err := check("bucket "+n.FailuresBucket(), err, jetstream.ErrBucketNotFound); err != nil {
		return err
	}
	for _, c := range consumers {
		_, err := js.Consumer(ctx, c.Stream, c.Durable)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // named above
		}
		if err := check("consumer "+c.Durable+" on "+c.Stream, err, jetstream.ErrConsumerNotFound); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return errors.New("missing: " + strings.Join(missing, ", "))
	}
	return nil
}

// declareStreamOnce is one look-up of the stream of cfg and what mode does then: ManageUpdate
// updates it, ManageCreate and ManageNone log what differs and keep it; a missing stream is
// created, or ErrNotDeclared with ManageNone.
func declareStreamOnce(ctx context.Context, js jetstream.JetStream, mode Manage, cfg jetstream.StreamConfig, log *slog.Logger) error {
	cctx, cancel := context.WithTimeout(ctx, declareCallTimeout)
	defer cancel()
	s, err := js.Stream(cctx, cfg.Name)
	switch {
	case err == nil && mode == ManageUpdate:
		_, err = js.UpdateStream(cctx, cfg)
		return err
	case err == nil:
		if diff := streamDiff(s.CachedInfo().Config, cfg); len(diff) > 0 {
			log.Warn("stream differs from the configured settings; kept as it is (DRAIN_STREAM_MANAGE="+string(orCreate(mode))+")",
				"stream", cfg.Name, "differences", strings.Join(diff, "; "))
		}
		return nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return err
	case mode == ManageNone:
		return ErrNotDeclared
	}
	_, err = js.CreateStream(cctx, cfg)
	return err
}

// retryableDeclare reports whether a declare call failed for a reason that a new look-up
// resolves: a timeout, or another process creating the same stream first.
func retryableDeclare(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound)
}

// notConnected is the error of a connection that is not connected: it names the servers it
// tries to reach (without credentials).
func notConnected(nc *nats.Conn) error {
	servers := nc.Servers()
	for i, s := range servers {
		if u, err := url.Parse(s); err == nil {
			u.User = nil
			servers[i] = u.String()
		}
	}
	return fmt.Errorf("nats: not connected: cannot reach %s", strings.Join(servers, ", "))
}

// MsgID returns the content-derived Nats-Msg-Id of a message: a hash of its subject and body.
// A byte-identical re-send (a bus retry) gets the same id, so JetStream stores it once inside
// the duplicate window.
func MsgID(subject string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
