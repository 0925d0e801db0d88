package apiclient

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Breaker states as exported by the drain_apiclient_breaker_state gauge.
const (
	StateClosed   = 0 // requests flow; outcomes are counted
	StateHalfOpen = 1 // one probe request is let through
	StateOpen     = 2 // requests fail at once with ErrCircuitOpen
)

// breakers holds the circuit breakers of one Client: one per host with an override, up to
// MaxHosts for the other hosts, and the shared OtherHost breaker for the hosts beyond while
// every slot is busy. A slot is busy while its breaker is open or was used within its host's
// TimeWindow; an idle one is dropped when a new host arrives (at most one scan per
// sweepEvery), so hosts named once by some event do not stay in memory.
//
// Lock order: a breaker calls onStateChange with its own mutex held, and onStateChange takes
// b.mu; code holding b.mu therefore never calls into a breaker.
type breakers struct {
	o          BreakerOptions // with defaults
	metrics    *metrics
	log        *slog.Logger
	sweepEvery time.Duration

	mu        sync.Mutex
	hosts     map[string]*breakerEntry
	own       int // entries of hosts without an override, counted against MaxHosts
	other     *breakerEntry
	nextSweep time.Time
	// unlabeled counts, by state, the breakers whose host has no label of its own (and the
	// other breaker): the OtherHost gauge shows the worst of them.
	unlabeled  [3]int
	otherShown bool // the OtherHost gauge has a series
}

type breakerEntry struct {
	cb         *gobreaker.CircuitBreaker[*Response]
	host       string
	label      string        // the host label of its state gauge
	configured bool          // the host has an override: never dropped
	idle       time.Duration // the host's TimeWindow
	lastUse    time.Time     // under breakers.mu
	state      int           // StateClosed, StateHalfOpen or StateOpen, under breakers.mu
}

func newBreakers(o BreakerOptions, m *metrics, log *slog.Logger) *breakers {
	return &breakers{
		o: o, metrics: m, log: log,
		sweepEvery: min(time.Second, o.TimeWindow),
		hosts:      map[string]*breakerEntry{},
	}
}

// get returns host's circuit breaker, making one if needed.
//
// Semantics (docs/apiclient.md): outcomes are counted over a rolling TimeWindow (ten buckets);
// the circuit opens when at least VolumeThreshold requests completed in the window and at
// least ErrorThreshold percent of them failed. It stays open for SleepWindow, then lets one
// probe through (half-open): a success closes it, a failure opens it again.
func (b *breakers) get(host string) *gobreaker.CircuitBreaker[*Response] {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.hosts[host]; ok {
		e.lastUse = now
		if e.label == OtherHost && !b.metrics.hosts.Full() {
			b.promote(e)
		}
		return e.cb
	}
	configured := b.o.configured(host)
	if !configured && !now.Before(b.nextSweep) {
		b.sweep(now)
	}
	if !configured && b.own >= b.o.MaxHosts {
		if b.other == nil {
			b.other = b.newEntry(OtherHost, OtherHost, false)
			b.metrics.breakers.Set(float64(b.count()))
		}
		b.other.lastUse = now
		return b.other.cb
	}
	e := b.newEntry(host, b.metrics.hosts.Existing(host), configured)
	e.lastUse = now
	b.hosts[host] = e
	if !configured {
		b.own++
	}
	b.metrics.breakers.Set(float64(b.count()))
	return e.cb
}

func (b *breakers) count() int {
	if b.other != nil {
		return len(b.hosts) + 1
	}
	return len(b.hosts)
}

// promote shows e under its host's own label once a request sent to the host gave it one
// (a breaker is made before its first request, which may never be sent: a host refused at
// dial time keeps no series of its own).
func (b *breakers) promote(e *breakerEntry) {
	label := b.metrics.hosts.Existing(e.host)
	if label == OtherHost {
		return
	}
	b.unlabeled[e.state]--
	e.label = label
	b.metrics.breakerState(label, gobreakerState(e.state))
	b.showUnlabeled()
}

// sweep drops the breakers that are not open and were not used for their TimeWindow: their
// counts have expired, so a fresh breaker behaves the same.
func (b *breakers) sweep(now time.Time) {
	b.nextSweep = now.Add(b.sweepEvery)
	for h, e := range b.hosts {
		if e.configured || e.state == StateOpen || now.Sub(e.lastUse) < e.idle {
			continue
		}
		delete(b.hosts, h)
		b.own--
		if e.label == OtherHost {
			b.unlabeled[e.state]--
		} else {
			b.metrics.breakerState(e.label, gobreaker.StateClosed) // a new one starts closed
		}
	}
	b.metrics.breakers.Set(float64(b.count()))
	b.showUnlabeled()
}

// newEntry makes the breaker of host (OtherHost for the shared one), shown under label.
func (b *breakers) newEntry(host, label string, configured bool) *breakerEntry {
	s := b.o.For(host)
	e := &breakerEntry{host: host, label: label, configured: configured, idle: s.TimeWindow}
	var cb *gobreaker.CircuitBreaker[*Response]
	cb = gobreaker.NewCircuitBreaker[*Response](gobreaker.Settings{
		Name:         host,
		MaxRequests:  1,
		Interval:     s.TimeWindow,
		BucketPeriod: s.TimeWindow / 10,
		Timeout:      s.SleepWindow,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			total := uint64(n.TotalSuccesses) + uint64(n.TotalFailures)
			return total >= uint64(s.VolumeThreshold) && uint64(n.TotalFailures)*100 >= uint64(s.ErrorThreshold)*total
		},
		IsSuccessful: func(err error) bool { return !isFailure(err) },
		IsExcluded: func(err error) bool {
			var g callerGaveUp
			return errors.As(err, &g) || errors.Is(err, ErrAddressNotAllowed)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			b.stateChanged(e, to)
			b.log.Warn("apiclient: circuit breaker state changed", "host", name, "from", from.String(), "to", to.String())
			if to == gobreaker.StateOpen {
				// gobreaker moves to half-open lazily, on the next call; poke it when the
				// sleep window ends so the gauge shows half-open even with no traffic.
				time.AfterFunc(s.SleepWindow+time.Millisecond, func() { cb.State() })
			}
		},
	})
	e.cb = cb
	if label == OtherHost {
		b.unlabeled[StateClosed]++
	} else {
		b.metrics.breakerState(label, gobreaker.StateClosed)
	}
	b.showUnlabeled()
	return e
}

// stateChanged records e's new state and updates its gauge. A breaker dropped meanwhile (a
// request was still running on it) changes nothing.
func (b *breakers) stateChanged(e *breakerEntry, to gobreaker.State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hosts[e.host] != e && b.other != e {
		return
	}
	v := stateValue(to)
	if e.label == OtherHost {
		b.unlabeled[e.state]--
		b.unlabeled[v]++
		e.state = v
		b.showUnlabeled()
		return
	}
	e.state = v
	b.metrics.breakerState(e.label, to)
}

// showUnlabeled sets the OtherHost gauge to the worst state of the breakers without a label
// of their own (closed once none is left).
func (b *breakers) showUnlabeled() {
	switch {
	case b.unlabeled[StateOpen] > 0:
		b.metrics.breakerState(OtherHost, gobreaker.StateOpen)
	case b.unlabeled[StateHalfOpen] > 0:
		b.metrics.breakerState(OtherHost, gobreaker.StateHalfOpen)
	case b.unlabeled[StateClosed] > 0 || b.otherShown:
		b.metrics.breakerState(OtherHost, gobreaker.StateClosed)
	default:
		return
	}
	b.otherShown = true
}

func gobreakerState(v int) gobreaker.State {
	switch v {
	case StateHalfOpen:
		return gobreaker.StateHalfOpen
	case StateOpen:
		return gobreaker.StateOpen
	}
	return gobreaker.StateClosed
}

// isFailure says which outcomes count against a host's circuit: 5xx statuses, timeouts and
// connection failures. 3xx and 4xx mean the origin is up and answering, so they count as
// successes, as does an over-size body. A request the caller cancelled, or one refused
// before connecting (ErrAddressNotAllowed), is not counted.
func isFailure(err error) bool {
	return errors.Is(err, ErrServerError) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnection)
}
