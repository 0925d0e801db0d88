package main

import (
	"fmt"
	"io"
	"time"
)

// How often a long command (cache fix-ttl, dlq replay, dirty sweep) reports its progress on
// stderr: every progressEvery items, or when progressInterval has passed since the last line,
// whichever comes first. Variables so tests can report sooner.
var (
	progressEvery    = 1000
	progressInterval = 2 * time.Second
)

// progress reports a long command's advance on stderr, so an operator running it on a large
// map or DLQ sees it move; stdout keeps only the command's output. Nothing is printed for a
// command that ends before its first report.
type progress struct {
	w       io.Writer
	what    string // the command and unit: "dirty sweep: %d URLs swept"
	n, last int    // items so far, and at the last report
	start   time.Time
	lastAt  time.Time
	printed bool
}

func newProgress(e *Env, what string) *progress {
	now := time.Now()
	return &progress{w: e.Stderr, what: what, start: now, lastAt: now}
}

// add counts k more items and reports when progressEvery more items were counted since the
// last report or progressInterval has passed.
func (p *progress) add(k int) { p.set(p.n + k) }

// set sets the count to n (a total the library reports) and reports as add does.
func (p *progress) set(n int) {
	p.n = n
	if p.n/progressEvery > p.last/progressEvery || time.Since(p.lastAt) >= progressInterval {
		p.report()
	}
}

func (p *progress) report() {
	fmt.Fprintf(p.w, "drainctl "+p.what+" (%s)\n", p.n, time.Since(p.start).Round(time.Millisecond))
	p.last, p.lastAt, p.printed = p.n, time.Now(), true
}

// done prints the final count when any progress was reported.
func (p *progress) done() {
	if p.printed && p.n != p.last {
		p.report()
	}
}
