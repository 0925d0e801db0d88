package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of ConnectOptions.
const (
	// DefaultURL is the NATS server Connect dials when ConnectOptions.URL is empty.
	DefaultURL = nats.DefaultURL
	// DefaultClientName is the client name NATS shows (connz) when ConnectOptions.Name is empty.
	DefaultClientName = "routemaster-drain"
)

// ConnectOptions configure Connect. The zero value connects to DefaultURL without
// credentials or TLS files, logs to slog.Default() and keeps JetStream's async publishing
// defaults. pkg/config fills URL, Creds and the TLS files from NATS_*; the caller sets Name,
// Log and the publishing bounds.
type ConnectOptions struct {
	// URL is the server URL, or several comma-separated (NATS_URL; default DefaultURL).
	// user:password@ or token@ in a URL authenticate; tls:// forces TLS.
	URL string
	// Name is the client name the server shows (default DefaultClientName).
	Name string
	// Creds is the path of a NATS credentials (.creds) file, "" for none (NATS_CREDS).
	Creds string
	// TLSCA is the path of a PEM CA bundle that verifies the server, "" for the system roots
	// (NATS_TLS_CA).
	TLSCA string
	// TLSCert and TLSKey are the paths of a PEM client certificate and its key, both or
	// neither (NATS_TLS_CERT, NATS_TLS_KEY).
	TLSCert, TLSKey string
	// Log receives disconnections, reconnections and asynchronous errors (default
	// slog.Default()).
	Log *slog.Logger
	// PublishAsyncTimeout bounds the wait for the ack of each asynchronous publish of the
	// returned JetStream context (jetstream.WithPublishAsyncTimeout); 0 keeps JetStream's
	// default, no bound.
	PublishAsyncTimeout time.Duration
	// PublishAsyncMaxPending bounds the asynchronous publishes awaiting an ack
	// (jetstream.WithPublishAsyncMaxPending); 0 keeps JetStream's default (4000).
	PublishAsyncMaxPending int
}

func (o ConnectOptions) withDefaults() ConnectOptions {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Name == "" {
		o.Name = DefaultClientName
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o
}

func (o ConnectOptions) validate() error {
	switch {
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return errors.New("stream: ConnectOptions.TLSCert and TLSKey must be set together")
	case o.PublishAsyncTimeout < 0:
		return fmt.Errorf("stream: ConnectOptions.PublishAsyncTimeout %v must not be negative", o.PublishAsyncTimeout)
	case o.PublishAsyncMaxPending < 0:
		return fmt.Errorf("stream: ConnectOptions.PublishAsyncMaxPending %d must not be negative", o.PublishAsyncMaxPending)
	}
	return nil
}

// Defaults of StreamOptions.
const (
	// DefaultPrefix prefixes every subject, stream and durable consumer name (the gem's bus
	// name).
	DefaultPrefix = "routemaster"
	// DefaultReplicas is the JetStream replica count of every stream.
	DefaultReplicas = 1
	// DefaultMaxAge is how long a stream keeps a message.
	DefaultMaxAge = 72 * time.Hour
	// DefaultDuplicateWindow is the JetStream deduplication window: a batch re-sent inside it
	// (same Nats-Msg-Id) is stored once.
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultDLQMaxBytes bounds the dead-letter stream: 1 GiB.
	DefaultDLQMaxBytes int64 = 1 << 30
)

// prefixRE is what a prefix may hold: a subject token that is also a stream name.
var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// StreamOptions are the JetStream settings of every stream the drain declares (Declare,
// DeclareUntil, StreamConfig). Zero fields take the defaults above: the zero value declares
// file-backed streams under DefaultPrefix, one replica, kept DefaultMaxAge, and a dead-letter
// stream kept until replayed within DefaultDLQMaxBytes. pkg/config fills every field from
// DRAIN_PREFIX, DRAIN_STREAM_*, DRAIN_DUPLICATE_WINDOW and DRAIN_DLQ_*.
type StreamOptions struct {
	// Prefix prefixes every subject and stream name, [A-Za-z0-9_-]+ (default DefaultPrefix).
	Prefix string
	// Replicas is the JetStream replica count of every stream, 1 to 5 (default
	// DefaultReplicas).
	Replicas int
	// MaxAge is how long a stream keeps a message (default DefaultMaxAge). The dead-letter
	// stream uses DLQMaxAge instead.
	MaxAge time.Duration
	// MemoryStorage keeps the streams in memory instead of files.
	MemoryStorage bool
	// DuplicateWindow is the JetStream deduplication window (default
	// DefaultDuplicateWindow); it must not exceed MaxAge (nor a non-zero DLQMaxAge).
	DuplicateWindow time.Duration
	// DLQMaxAge is how long dead letters are kept; 0 (the default) keeps them until
	// replayed.
	DLQMaxAge time.Duration
	// DLQMaxBytes bounds the dead-letter stream (default DefaultDLQMaxBytes). A full DLQ
	// refuses new dead letters, so consumers keep retrying instead of JetStream dropping old
	// ones.
	DLQMaxBytes int64
	// Manage says what Declare and Consume may do to the streams, the failures bucket and the
	// consumers they find (DRAIN_STREAM_MANAGE; the zero value is ManageCreate).
	Manage Manage
}

// Names returns the subject and stream names under o's prefix.
func (o StreamOptions) Names() Names { return Names{Prefix: o.withDefaults().Prefix} }

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.DLQMaxBytes == 0 {
		o.DLQMaxBytes = DefaultDLQMaxBytes
	}
	if o.Manage == "" {
		o.Manage = ManageCreate
	}
	return o
}

// validate checks o after withDefaults.
func (o StreamOptions) validate() error {
	switch {
	case !prefixRE.MatchString(o.Prefix):
		return fmt.Errorf("stream: StreamOptions.Prefix %q must match [A-Za-z0-9_-]+", o.Prefix)
	case o.Replicas < 1 || o.Replicas > 5:
		return fmt.Errorf("stream: StreamOptions.Replicas %d must be from 1 to 5", o.Replicas)
	case o.Manage != "" && o.Manage != ManageCreate && o.Manage != ManageUpdate && o.Manage != ManageNone:
		return fmt.Errorf("stream: StreamOptions.Manage %q must be create, update or none", o.Manage)
	case o.MaxAge < 0:
		return fmt.Errorf("stream: StreamOptions.MaxAge %v must not be negative", o.MaxAge)
	case o.DuplicateWindow < 0:
		return fmt.Errorf("stream: StreamOptions.DuplicateWindow %v must not be negative", o.DuplicateWindow)
	case o.DuplicateWindow > o.MaxAge:
		return fmt.Errorf("stream: StreamOptions.DuplicateWindow %v must not exceed MaxAge %v", o.DuplicateWindow, o.MaxAge)
	case o.DLQMaxAge < 0:
		return fmt.Errorf("stream: StreamOptions.DLQMaxAge %v must not be negative (0 keeps dead letters until replayed)", o.DLQMaxAge)
	case o.DLQMaxAge > 0 && o.DuplicateWindow > o.DLQMaxAge:
		return fmt.Errorf("stream: StreamOptions.DuplicateWindow %v must not exceed DLQMaxAge %v", o.DuplicateWindow, o.DLQMaxAge)
	case o.DLQMaxBytes < 0:
		return fmt.Errorf("stream: StreamOptions.DLQMaxBytes %d must not be negative", o.DLQMaxBytes)
	}
	return nil
}

// Defaults of ConsumerConfig: what Consume, EnsureConsumer, Listen and ListenTo use for a
// zero field.
const (
	// DefaultConcurrency is how many messages one process handles at once.
	DefaultConcurrency = 1
	// DefaultMaxAckPending caps the unacked messages of a durable consumer, all replicas
	// together (JetStream MaxAckPending).
	DefaultMaxAckPending = 1000
	// DefaultMaxDeliver is how many deliveries a message gets before it is dead-lettered.
	DefaultMaxDeliver = 20
	// DefaultAckWait is how long JetStream waits for an ack before redelivering (handlers
	// running longer are kept alive with InProgress).
	DefaultAckWait = 30 * time.Second
	// DefaultBackoff is the first retry delay; it doubles per delivery.
	DefaultBackoff = time.Second
	// DefaultBackoffMax is the longest retry delay.
	DefaultBackoffMax = 30 * time.Second
)

// validate checks c after defaults: the stream and durable name are required.
func (c *ConsumerConfig) validate() error {
	switch {
	case c.Stream == "":
		return errors.New("stream: ConsumerConfig.Stream is required")
	case c.Durable == "":
		return errors.New("stream: ConsumerConfig.Durable is required")
	}
	return nil
}
