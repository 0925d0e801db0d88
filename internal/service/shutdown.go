package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// ShutdownTimeoutError is what a service returns when DRAIN_SHUTDOWN_TIMEOUT passed after
// SIGTERM with work still in flight. Main logs it at error level and exits 1; a clean drain
// exits 0. Nothing is lost: the abandoned work is redelivered (JetStream messages after their
// ack wait, bus requests by the bus's retry, sweep batches from the dirty map).
type ShutdownTimeoutError struct {
	// Timeout is DRAIN_SHUTDOWN_TIMEOUT.
	Timeout time.Duration
	// Abandoned names the work left unfinished and how it comes back.
	Abandoned string
}

func (e *ShutdownTimeoutError) Error() string {
	return fmt.Sprintf("DRAIN_SHUTDOWN_TIMEOUT (%v) passed with work in flight: abandoned %s", e.Timeout, e.Abandoned)
}

// AwaitStop waits for a service's work, which reports its end on done, to finish. While ctx
// is live it returns as soon as the work does. Once ctx is cancelled (SIGTERM) it calls
// stopping (when not nil; Lifecycle.Run turns /readyz to "stopping" with it), then waits at
// most timeout: if the work has not returned by then it returns a *ShutdownTimeoutError
// naming abandoned.
func AwaitStop(ctx context.Context, done <-chan error, timeout time.Duration, abandoned string, stopping func(), log *slog.Logger) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	if stopping != nil {
		stopping()
	}
	log.Info("stopping: finishing work in flight", "timeout", timeout)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return &ShutdownTimeoutError{Timeout: timeout, Abandoned: abandoned}
	}
}

// CloseNATS drains nc (flushing pending publishes and acks, then closing), waiting at most
// timeout, and closes it outright when the drain fails or takes longer.
func CloseNATS(nc *nats.Conn, timeout time.Duration, log *slog.Logger) {
	if nc == nil || nc.IsClosed() {
		return
	}
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	deadline := time.Now().Add(timeout)
	for !nc.IsClosed() {
		if time.Now().After(deadline) {
			log.Warn("nats drain timed out; closing", "timeout", timeout)
			nc.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
