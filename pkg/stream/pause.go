package stream

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// gate pauses a Consume while its handler's dependency is down. It closes at a
// TransientError; while it is closed nothing is fetched and no held message runs its handler,
// except one probe every interval: the held message whose last run is the oldest runs again.
// The first handler result that is not a TransientError, a probe's or that of a message
// already running when the gate closed, opens it again and every held message runs.
//
// A message is held by its own goroutine, so a paused consumer costs what it holds (at most
// twice its Concurrency, kept alive with InProgress) and one handler run per interval.
type gate struct {
	every   time.Duration
	durable string
	log     *slog.Logger

	mu      sync.Mutex
	closed  bool
	open    chan struct{} // closed while the gate is open
	since   time.Time     // when it closed
	cause   error         // the TransientError that closed it
	probes  int           // probes run since it closed
	waiting []*probeTurn  // held messages, oldest run first
	wake    chan struct{} // cap 1: a message started waiting
}

// probeTurn is a held message's place in the probe queue: go is closed when its turn comes,
// done when its probe run has a result.
type probeTurn struct {
	run, done chan struct{}
}

// finish reports that the probe run of t has its result; a nil t is a run that was no probe.
func (t *probeTurn) finish() {
	if t != nil {
		close(t.done)
	}
}

func newGate(every time.Duration, durable string, log *slog.Logger) *gate {
	g := &gate{every: every, durable: durable, log: log, open: make(chan struct{}), wake: make(chan struct{}, 1)}
	close(g.open)
	return g
}

// opened returns a channel closed while the gate is open.
func (g *gate) opened() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// isOpen reports whether the gate is open.
func (g *gate) isOpen() bool {
	select {
	case <-g.opened():
		return true
	default:
		return false
	}
}

// fail records a TransientError: the gate closes if it was open.
func (g *gate) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed, g.open, g.since, g.cause, g.probes = true, make(chan struct{}), time.Now(), err, 0
	g.log.Warn("handler dependency down: consumer paused; held messages are kept alive and one is probed every interval",
		"consumer", g.durable, "probe_every", g.every.String(), "err", err)
}

// pass records a result that is not a TransientError: the gate opens if it was closed.
func (g *gate) pass() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		return
	}
	g.closed = false
	close(g.open)
	g.waiting = nil
	g.log.Info("handler dependency back: consumer resumed", "consumer", g.durable,
		"paused", time.Since(g.since).Round(time.Millisecond).String(), "probes", g.probes, "cause", g.cause)
}

// await parks a held message after its TransientError until the gate opens or its turn to
// probe comes, and reports which (a nil turn: the gate opened; run, and call turn.finish
// after the result). It returns false when stop ends first.
func (g *gate) await(stop context.Context) (*probeTurn, bool) {
	g.mu.Lock()
	if !g.closed {
		g.mu.Unlock()
		return nil, true
	}
	t := &probeTurn{run: make(chan struct{}), done: make(chan struct{})}
	g.waiting = append(g.waiting, t)
	open := g.open
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	select {
	case <-t.run:
		return t, true
	case <-open:
	case <-stop.Done():
	}
	// Leave the queue; if the turn came meanwhile, the prober is not waiting for it any more
	// (the gate opened, or Consume is stopping).
	g.mu.Lock()
	for i, w := range g.waiting {
		if w == t {
			g.waiting = append(g.waiting[:i], g.waiting[i+1:]...)
			break
		}
	}
	g.mu.Unlock()
	return nil, stop.Err() == nil
}

// probe runs until ctx ends: while the gate is closed, it gives the turn to the first waiting
// message every interval and waits for that run's result.
func (g *gate) probe(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.wake:
		}
		for {
			g.mu.Lock()
			closed, open := g.closed, g.open
			g.mu.Unlock()
			if !closed {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-open:
				continue
			case <-time.After(g.every):
			}
			g.mu.Lock()
			if !g.closed || len(g.waiting) == 0 {
				g.mu.Unlock()
				break // opened, or nobody waits yet: the next waiter wakes the prober
			}
			t := g.waiting[0]
			g.waiting = g.waiting[1:]
			g.probes++
			open = g.open
			g.mu.Unlock()
			close(t.run)
			select {
			case <-ctx.Done():
				return
			case <-open:
			case <-t.done:
			}
		}
	}
}
