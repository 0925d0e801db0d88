package apiclient

import (
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Breaker states as exported by the drain_apiclient_breaker_state gauge.
const (
	StateClosed   = 0 // requests flow; outcomes are counted
	StateHalfOpen = 1 // one probe request is let through
	StateOpen     = 2 // requests fail at once with ErrCircuitOpen
)

// breaker returns host's circuit breaker, or nil when circuits are disabled.
//
// Semantics (docs/apiclient.md): outcomes are counted over a rolling TimeWindow (ten buckets);
// the circuit opens when at least VolumeThreshold requests completed in the window and at
// least ErrorThreshold percent of them failed. It stays open for SleepWindow, then lets one
// probe through (half-open): a success closes it, a failure opens it again.
func (c *Client) breaker(host string) *gobreaker.CircuitBreaker[*Response] {
	if !c.o.Breaker.Enabled {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cb, ok := c.breakers[host]; ok {
		return cb
	}
	b := c.o.Breaker.For(host)
	var cb *gobreaker.CircuitBreaker[*Response]
	cb = gobreaker.NewCircuitBreaker[*Response](gobreaker.Settings{
		Name:         host,
		MaxRequests:  1,
		Interval:     b.TimeWindow,
		BucketPeriod: b.TimeWindow / 10,
		Timeout:      b.SleepWindow,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			total := uint64(n.TotalSuccesses) + uint64(n.TotalFailures)
			return total >= uint64(b.VolumeThreshold) && uint64(n.TotalFailures)*100 >= uint64(b.ErrorThreshold)*total
		},
		IsSuccessful: func(err error) bool { return !isFailure(err) },
		IsExcluded: func(err error) bool {
			var g callerGaveUp
			return errors.As(err, &g)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			c.metrics.breakerState(name, to)
			c.log.Warn("apiclient: circuit breaker state changed", "host", name, "from", from.String(), "to", to.String())
			if to == gobreaker.StateOpen {
				// gobreaker moves to half-open lazily, on the next call; poke it when the
				// sleep window ends so the gauge shows half-open even with no traffic.
				time.AfterFunc(b.SleepWindow+time.Millisecond, func() { cb.State() })
			}
		},
	})
	c.breakers[host] = cb
	c.metrics.breakerState(host, gobreaker.StateClosed)
	return cb
}

// isFailure says which outcomes count against a host's circuit: 5xx statuses, timeouts and
// connection failures. 3xx and 4xx mean the origin is up and answering, so they count as
// successes, as does an over-size body. A request the caller cancelled is not counted.
func isFailure(err error) bool {
	return errors.Is(err, ErrServerError) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnection)
}
