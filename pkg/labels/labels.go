// Package labels bounds the values of a Prometheus label that come from outside data (hosts an
// event names, topics a publisher invents), so that nobody holding a bus token can grow a
// Prometheus server or a process's memory: the first Max values seen get a label of their own,
// every later one shares one Other value, and an admitted value keeps its label for the life
// of the set, so series never churn.
package labels

import (
	"sync"
	"sync/atomic"
)

// Bounded is a set of label values with a bound. It is safe for concurrent use; Admit of a
// value already admitted, and every call once the set is full, takes no lock.
type Bounded struct {
	max   int
	other string
	own   sync.Map    // value -> struct{}: values with a label of their own
	full  atomic.Bool // max values admitted: Admit answers other without locking
	mu    sync.Mutex  // serialises admissions
	n     int         // values admitted beyond the preset ones, under mu
}

// NewBounded returns a set that admits up to max values besides preset (values that always
// have a label of their own, such as configured hosts), and answers other for the rest.
func NewBounded(max int, other string, preset ...string) *Bounded {
	b := &Bounded{max: max, other: other}
	for _, v := range preset {
		b.own.Store(v, struct{}{})
	}
	return b
}

// Admit returns v's label: v itself when it has one or the set has room for it (it is then
// admitted), the other value otherwise.
func (b *Bounded) Admit(v string) string {
	if _, ok := b.own.Load(v); ok {
		return v
	}
	if b.full.Load() {
		return b.other
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.own.Load(v); ok {
		return v
	}
	if b.n >= b.max {
		b.full.Store(true)
		return b.other
	}
	b.own.Store(v, struct{}{})
	b.n++
	return v
}

// Existing returns v's label without admitting it: v when it has one, the other value
// otherwise (for values that must not earn a series, such as refused hosts).
func (b *Bounded) Existing(v string) string {
	if _, ok := b.own.Load(v); ok {
		return v
	}
	return b.other
}

// Full reports whether the set has admitted Max values, so that Admit of a new value answers
// the other value.
func (b *Bounded) Full() bool { return b.full.Load() }
