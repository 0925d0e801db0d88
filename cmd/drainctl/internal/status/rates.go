package status

import (
	"sync"
	"time"
)

// Rates turns successive Statuses into rates: messages stored per second for each stream
// (LastSeq), deliveries per second for each consumer (Delivered). It keeps one sample, the
// counters of the last Status it took, so its memory is bounded by the size of one Status.
// It is safe for concurrent use; the console shares one between every viewer.
type Rates struct {
	// MinInterval is the shortest time between two samples (default 1 s): a Status gathered
	// sooner after the last sample gets the rates of that sample, so two viewers refreshing
	// out of step do not see rates measured over a few milliseconds.
	MinInterval time.Duration

	mu    sync.Mutex
	at    time.Time
	count map[string]uint64
	rate  map[string]float64
}

// Apply sets the Rate of every stream and consumer of st that the previous sample also held
// and whose counter did not go back (a stream or consumer recreated); the first Status has
// none. st.Time is the sample's time.
func (r *Rates) Apply(st *Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	minInterval := r.MinInterval
	if minInterval <= 0 {
		minInterval = time.Second
	}
	count := make(map[string]uint64, len(st.Streams)+len(st.Consumers))
	for _, s := range st.Streams {
		count["s\x00"+s.Name] = s.LastSeq
	}
	for _, c := range st.Consumers {
		count["c\x00"+c.Stream+"\x00"+c.Name] = c.Delivered
	}
	if dt := st.Time.Sub(r.at); r.count == nil || dt >= minInterval {
		rate := make(map[string]float64, len(count))
		for k, n := range count {
			if before, ok := r.count[k]; ok && n >= before {
				rate[k] = float64(n-before) / dt.Seconds()
			}
		}
		if r.count == nil {
			rate = nil
		}
		r.at, r.count, r.rate = st.Time, count, rate
	}
	ratePtr := func(k string) *float64 {
		if v, ok := r.rate[k]; ok {
			return &v
		}
		return nil
	}
	for i, s := range st.Streams {
		st.Streams[i].Rate = ratePtr("s\x00" + s.Name)
	}
	for i, c := range st.Consumers {
		st.Consumers[i].Rate = ratePtr("c\x00" + c.Stream + "\x00" + c.Name)
	}
}
