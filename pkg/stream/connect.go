package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect opens a NATS connection with the server, client name, credentials and TLS files
// of o, and returns it with its JetStream context (bounded by o.PublishAsyncTimeout and
// o.PublishAsyncMaxPending when set). The connection reconnects forever (a drain process
// outlives NATS restarts); disconnections and reconnections are logged to o.Log. It fails on
// invalid options or when a credentials or TLS file cannot be used; a server that is down is
// retried in the background, not an error.
func Connect(o ConnectOptions) (*nats.Conn, jetstream.JetStream, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, nil, err
	}
	log := o.Log
	natsOpts := []nats.Option{
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
		nats.ReconnectHandler(func(c *nats.Conn) {
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

// Declare creates every drain stream under o.Prefix (o.Names()), or updates it to the
// settings of o. It is idempotent and safe to run from every replica of every service at
// start. Invalid options are an error before anything is declared.
func Declare(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return err
	}
	// All at once: on a cluster each stream's replicas are placed and elect a leader, which
	// takes a moment per stream; one after another they add up.
	errs := make([]error, len(Kinds))
	var wg sync.WaitGroup
	for i, k := range Kinds {
		wg.Go(func() { errs[i] = declareStream(ctx, js, StreamConfig(o, k)) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// declareCallTimeout bounds one JetStream API call of declareStream. Two processes creating
// the same stream at the same moment on a cluster can both wait for an answer that never
// comes (seen with nats-server 2.10 to 2.12); a short bound and a retry that finds the stream
// ends that in a second instead of a client timeout.
const declareCallTimeout = 2 * time.Second

// declareStream creates the stream of cfg, or updates it to cfg when it exists, looking it up
// first and retrying a create that timed out or lost a race (with a random pause, so two
// racing processes do not collide again) until ctx ends.
func declareStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	for {
		err := declareStreamOnce(ctx, js, cfg)
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

func declareStreamOnce(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	cctx, cancel := context.WithTimeout(ctx, declareCallTimeout)
	defer cancel()
	if _, err := js.Stream(cctx, cfg.Name); err == nil {
		_, err = js.UpdateStream(cctx, cfg)
		return err
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	_, err := js.CreateStream(cctx, cfg)
	return err
}

// retryableDeclare reports whether a declare call failed for a reason that a new look-up
// resolves: a timeout, or another process creating the same stream first.
func retryableDeclare(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// Ready reports nil when the connection is up and every drain stream exists.
func Ready(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, n Names) error {
	if !nc.IsConnected() {
		return errors.New("nats: not connected")
	}
	for _, k := range Kinds {
		if _, err := js.Stream(ctx, n.Stream(k)); err != nil {
			return fmt.Errorf("stream %s: %w", n.Stream(k), err)
		}
	}
	return nil
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
