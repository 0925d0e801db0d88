// Package chaos proves the drain's guarantees (README, docs/operations.md) with every part running as its own
// process and failing. A simulated Routemaster bus (Plan, Bus) drives events through real
// ingest, filter, warmer and sweeper processes, a private NATS and a private redis-server,
// and an origin (Origin) whose representation of each URL is its latest version. Meanwhile
// the harness (Run) SIGKILLs and restarts random service processes and restarts NATS once and
// Redis once. At the end Verify checks what a user would look at: every batch acknowledged,
// filter state, dirty map hand-off, cache contents, dead letters and consumer backlogs.
//
// Options.RedisOutage keeps Redis down for as long as asked (cmd/chaos -redis-outage): the
// filters and warmers pause meanwhile, and with a small Options.MaxDeliver (-max-deliver 3)
// the run proves that an outage of any length spends no message's delivery budget (the
// dead-letter check stays at zero).
//
// `make chaos` runs the full size (cmd/chaos); TestChaosShort runs a smaller one in
// `make test`.
package chaos
