package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrAckTimeout is matched (errors.Is) by the failure of a message JetStream did not
// acknowledge in time: PublishAll's timeout passed, or the JetStream context's own async
// publish timeout fired first (jetstream.ErrAsyncPublishTimeout, also in the chain). The
// message may or may not be stored; publishing it again with the same Nats-Msg-Id inside the
// duplicate window stores it at most once.
var ErrAckTimeout = errors.New("no PubAck in time")

// PublishFailure is one message of a PublishAll that JetStream did not acknowledge.
type PublishFailure struct {
	Index int       // position in PublishAll's msgs
	Msg   *nats.Msg // the message
	Err   error     // why: the PubAck's error, ErrAckTimeout, the context's error, or the publish's
}

// PublishError is PublishAll's error: which messages JetStream did not acknowledge. Every
// other message of the call was acknowledged (stored, or recognised as a duplicate).
type PublishError struct {
	Failed []PublishFailure // in the order of msgs
	// Settled is true when every publish has resolved, so nats.go holds none of the messages
	// any more and their buffers may be reused. It is false after a timeout or a cancelled
	// context: nats.go may still send or resolve a message later.
	Settled bool
}

func (e *PublishError) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(e.Failed)))
	b.WriteString(" message(s) not acknowledged: ")
	for i, f := range e.Failed {
		if i == 3 {
			b.WriteString("; …")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Msg.Subject)
		b.WriteString(": ")
		b.WriteString(f.Err.Error())
	}
	return b.String()
}

// Unwrap returns the failures' errors, so errors.Is(err, ErrAckTimeout) and the like see them.
func (e *PublishError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// NoMsgID marks m to be published by PublishAll without a Nats-Msg-Id, and returns m. It is
// for a message whose content is never published twice, such as a warm request (each carries
// the index its own invalidation returned): an id would make JetStream keep one entry per
// message for the whole duplicate window, and catch nothing.
func NoMsgID(m *nats.Msg) *nats.Msg {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header[jetstream.MsgIDHeader] = nil // present without a value: PublishAll adds none, nats.go sends none
	return m
}

// PublishAll stores msgs on JetStream and returns nil only once JetStream acknowledged every
// one of them. The messages go out together (PublishMsgAsync), so a batch costs about one
// round trip; then PublishAll waits for every PubAck, at most timeout for all of them
// together, or until ctx ends. A message without a Nats-Msg-Id gets MsgID(subject, body)
// (unless marked with NoMsgID), so publishing the same messages again after a failure stores
// each at most once inside the duplicate window. A message without a traceparent header gets
// the W3C trace context of the span in ctx (InjectTrace; nothing when ctx is untraced); the
// Nats-Msg-Id never depends on it.
//
// Otherwise the error is a *PublishError naming every message not acknowledged. A failed
// publish stops the sending (the messages after it fail with its error, unsent), but the
// messages already sent are still waited for, so the report is complete; a timeout or ctx
// ends the wait at once, and then the messages still waiting fail with ErrAckTimeout or the
// context's error and Settled is false. Callers treat any failure as "not stored" and publish
// everything again later, with the same ids.
//
// js should be built with jetstream.WithPublishAsyncTimeout of at most timeout (and a
// jetstream.WithPublishAsyncMaxPending bound): without it, nats.go keeps a message whose
// PubAck never comes among its pending publishes.
func PublishAll(ctx context.Context, js jetstream.JetStream, timeout time.Duration, msgs []*nats.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var failed []PublishFailure
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		if id, ok := m.Header[jetstream.MsgIDHeader]; !ok || (len(id) > 0 && id[0] == "") {
			m.Header.Set(jetstream.MsgIDHeader, MsgID(m.Subject, m.Data))
		}
		if m.Header.Get(HeaderTraceparent) == "" {
			InjectTrace(ctx, m.Header)
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			err = fmt.Errorf("publish: %w", err)
			for j := i; j < len(msgs); j++ {
				failed = append(failed, PublishFailure{Index: j, Msg: msgs[j], Err: err})
			}
			break
		}
		futures = append(futures, f)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	settled := true
	var waitErr error // ends the wait: ErrAckTimeout or the context's error
	var nacked []PublishFailure
	for i, f := range futures {
		if waitErr == nil {
			select {
			case <-f.Ok():
				continue
			case err := <-f.Err():
				nacked = append(nacked, PublishFailure{Index: i, Msg: msgs[i], Err: ackError(err)})
				continue
			case <-timer.C:
				waitErr = fmt.Errorf("%w within %v", ErrAckTimeout, timeout)
			case <-ctx.Done():
				waitErr = ctx.Err()
			}
		}
		// The wait is over: a future that resolved meanwhile still counts.
		select {
		case <-f.Ok():
		case err := <-f.Err():
			nacked = append(nacked, PublishFailure{Index: i, Msg: msgs[i], Err: ackError(err)})
		default:
			settled = false
			nacked = append(nacked, PublishFailure{Index: i, Msg: msgs[i], Err: waitErr})
		}
	}
	if len(nacked) == 0 && len(failed) == 0 {
		return nil
	}
	return &PublishError{Failed: append(nacked, failed...), Settled: settled}
}

// ackError is the failure of a PubAck future; nats.go's own async timeout is an ErrAckTimeout.
func ackError(err error) error {
	if errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
		return fmt.Errorf("%w: %w", ErrAckTimeout, err)
	}
	return err
}
