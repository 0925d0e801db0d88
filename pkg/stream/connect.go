package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/config"
)

// Connect opens a NATS connection for the named client with the credentials and TLS settings
// of cfg, and returns it with its JetStream context (built with opts, for example
// jetstream.WithPublishAsyncTimeout). The connection reconnects forever (a drain process
// outlives NATS restarts); disconnections and reconnections are logged, and so is a server
// that cannot be reached (its address and why, at most every 30 s).
func Connect(cfg config.NATS, name string, log *slog.Logger, opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream, error) {
	var lastUnreachable atomic.Int64 // Unix ns of the last "cannot reach" line
	natsOpts := []nats.Option{
		nats.ReconnectErrHandler(func(c *nats.Conn, err error) {
			if now := time.Now().UnixNano(); now-lastUnreachable.Load() >= int64(30*time.Second) {
				lastUnreachable.Store(now)
				log.Warn("nats unreachable; retrying", "err", notConnected(c), "cause", err)
			}
		}),
		nats.Name(name),
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
	if cfg.Creds != "" {
		natsOpts = append(natsOpts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.TLSCA != "" {
		natsOpts = append(natsOpts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" {
		natsOpts = append(natsOpts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	nc, err := nats.Connect(cfg.URL, natsOpts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// StreamConfig returns the configuration the drain declares for the stream of kind k. Dead
// letters are kept until replayed (DRAIN_DLQ_MAX_AGE, forever by default) within
// DRAIN_DLQ_MAX_BYTES; a full DLQ refuses new dead letters, so the consumer keeps retrying the
// message instead of JetStream dropping an old one.
func StreamConfig(n Names, k Kind, s config.Streams) jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if s.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	if k == DLQ {
		return jetstream.StreamConfig{
			Name:        n.Stream(k),
			Description: "routemaster-drain dead letters",
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
		Description: "routemaster-drain " + string(k),
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
func FailuresConfig(n Names, s config.Streams) jetstream.KeyValueConfig {
	storage := jetstream.FileStorage
	if s.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	return jetstream.KeyValueConfig{
		Bucket:      n.FailuresBucket(),
		Description: failuresDescription,
		History:     1,
		TTL:         s.MaxAge,
		Storage:     storage,
		Replicas:    s.Replicas,
	}
}

// Declare declares every drain stream and the failures bucket as s.Manage says
// (DRAIN_STREAM_MANAGE; see Manage): by default it creates the missing ones and leaves the
// others as they are, logging with slog.Default what differs from s. It is idempotent and safe
// to run from every replica of every service at start. With ManageNone it only checks, and
// its error names everything missing (errors.Is ErrNotDeclared).
func Declare(ctx context.Context, js jetstream.JetStream, n Names, s config.Streams) error {
	return declare(ctx, js, n, s, slog.Default())
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
