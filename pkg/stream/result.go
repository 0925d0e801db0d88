package stream

import (
	"errors"
	"time"
)

// RetryError is a handler result asking for the message to be redelivered later. It is a
// failure of the message itself: each one spends a delivery of the budget (counted in the
// failures bucket, across replicas and restarts), and the message's MaxDeliver-th failure
// dead-letters it. Any error that is not one of the result types of this file means the same
// as a RetryError with no Delay.
type RetryError struct {
	Err error
	// Delay is how long JetStream waits before the redelivery (NakWithDelay); 0 means the
	// consumer's exponential backoff (ConsumerConfig.Backoff doubled per delivery, capped at
	// BackoffMax).
	Delay time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// TransientError is a handler result for a failure of the drain's own infrastructure (its
// Redis or JetStream unreachable, failing over, out of memory), which says nothing about the
// message and ends when the outage does. It spends nothing of the budget and is never
// dead-lettered: the consumer pauses (it fetches no new messages), keeps the message and the
// others it holds alive with InProgress, runs one held message again every ProbeInterval, and
// resumes at the first result that is not a TransientError, however long the outage lasts.
// A handler must not return it for a failure the message causes: a message that always fails
// transiently pauses its consumer's process for as long.
type TransientError struct {
	Err error
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// PermanentError is a handler result for a message that no retry can fix (it does not parse,
// its host is not allowed): the message is stored on <prefix>.dlq.<stage> with the reason and
// then terminated, at its first failing delivery. A handler panic has the same result.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Retry returns a *RetryError for err with the consumer's backoff. It only makes the intent
// explicit: a plain error means the same. A nil err becomes "retry requested".
func Retry(err error) error { return RetryAfter(0, err) }

// RetryAfter returns a *RetryError for err redelivered after delay (0: the consumer's
// backoff). A nil err becomes "retry requested".
func RetryAfter(delay time.Duration, err error) error {
	if err == nil {
		err = errors.New("retry requested")
	}
	return &RetryError{Err: err, Delay: delay}
}

// Transient returns a *TransientError for err. A nil err becomes "transient failure".
func Transient(err error) error {
	if err == nil {
		err = errors.New("transient failure")
	}
	return &TransientError{Err: err}
}

// Permanent returns a *PermanentError for err. A nil err becomes "permanent failure".
func Permanent(err error) error {
	if err == nil {
		err = errors.New("permanent failure")
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is or wraps a *PermanentError; it is errors.As with a
// *PermanentError target.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// fate is what Consume does with a message after its handler returned.
type fate int

const (
	fateAck fate = iota
	fateRetry
	fateTransient
	fatePermanent
)

// fateOf decides a handler result: the first result type found in err's chain (the
// outermost, in errors.As order) wins, so Transient(fmt.Errorf("…: %w", Permanent(e))) is
// transient. delay is a RetryError's Delay.
func fateOf(err error) (fate, time.Duration) {
	if err == nil {
		return fateAck, 0
	}
	var r result
	if errors.As(err, &r) {
		return r.fate()
	}
	return fateRetry, 0
}

// result is implemented by the result types.
type result interface {
	error
	fate() (fate, time.Duration)
}

func (e *RetryError) fate() (fate, time.Duration)     { return fateRetry, e.Delay }
func (e *TransientError) fate() (fate, time.Duration) { return fateTransient, 0 }
func (e *PermanentError) fate() (fate, time.Duration) { return fatePermanent, 0 }
