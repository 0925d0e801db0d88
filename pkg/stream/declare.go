package stream

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/config"
)

// Retry timing of DeclareUntil: the first wait, the longest wait, and the bound of one attempt
// (so a NATS server that accepts the connection but never answers is retried too).
const (
	declareFirstWait  = 250 * time.Millisecond
	declareMaxWait    = 5 * time.Second
	declareAttemptMax = 5 * time.Second
)

// DeclareUntil declares the drain's streams (Declare, its differences logged on log), retrying
// with backoff (250ms doubling to 5s, each attempt bounded to 5s) until it succeeds or ctx is
// cancelled, so a service started while NATS is away (or, with ManageNone, before an operator
// created everything) waits instead of crash-looping. Each failure is logged at warn level,
// naming the servers when NATS cannot be reached. It returns nil once the streams are
// declared, ctx.Err() otherwise.
func DeclareUntil(ctx context.Context, js jetstream.JetStream, n Names, s config.Streams, log *slog.Logger) error {
	wait := declareFirstWait
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, declareAttemptMax)
		err := declare(dctx, js, n, s, log)
		cancel()
		if err != nil && !js.Conn().IsConnected() {
			err = notConnected(js.Conn()) // not the publish's "outbound buffer limit exceeded"
		}
		if err == nil {
			log.Info("streams declared", "prefix", n.Prefix, "attempts", attempt)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("declaring streams failed; retrying", "attempt", attempt, "err", err, "retry_in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, declareMaxWait)
	}
}
