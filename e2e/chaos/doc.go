// Package chaos proves the drain's guarantees (README, docs/operations.md) with every part running as its own
// process and failing. A simulated Routemaster bus (Plan, Bus) drives events through real
// ingest, filter, warmer and sweeper processes, a private NATS and a private redis-server,
// and an origin (Origin) whose representation of each URL is its latest version. Meanwhile
// the harness (Run) SIGKILLs and restarts random service processes and restarts NATS once and
// Redis once. At the end Verify checks what a user would look at: every batch acknowledged,
// filter state, dirty map hand-off, cache contents, dead letters and consumer backlogs.
//
// `make chaos` runs the full size (cmd/chaos); TestChaosShort runs a smaller one in
// `make test`.
package chaos
