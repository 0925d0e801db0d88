package stream

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Retry timing of DeclareUntil: the first wait, the longest wait, and the bound of one attempt
// (so a NATS server that accepts the connection but never answers is retried too). An attempt
// may take several seconds on a cluster that is forming or moving (the meta leader is being
// elected, replicas are placed), so it is bounded well above that: cutting it short only
// starts the same work again.
const (
	declareFirstWait  = 250 * time.Millisecond
	declareMaxWait    = 5 * time.Second
	declareAttemptMax = 20 * time.Second
)

// DeclareUntil declares the drain's streams and the failures bucket (Declare, its differences
// logged on log), retrying with backoff (250ms doubling to 5s, each attempt bounded to 20s)
// until it succeeds or ctx is cancelled, so a service started while NATS is away (or, with
// ManageNone, before an operator created everything) waits instead of crash-looping. Each
// failure is logged at warn level (log nil means slog.Default()), naming the servers when NATS
// cannot be reached. It returns nil once the streams are declared, the validation error of
// invalid options at once, and ctx.Err() otherwise.
func DeclareUntil(ctx context.Context, js jetstream.JetStream, o StreamOptions, log *slog.Logger) error {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return err
	}
	if log == nil {
		log = slog.Default()
	}
	wait := declareFirstWait
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, declareAttemptMax)
		err := declare(dctx, js, o, log)
		cancel()
		if err != nil && !js.Conn().IsConnected() {
			err = notConnected(js.Conn()) // not the publish's "outbound buffer limit exceeded"
		}
		if err == nil {
			log.Info("streams declared", "prefix", o.Prefix, "attempts", attempt)
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
