// Package stack runs the drain the way an operator does, as separate local processes: an
// embedded JetStream server (restartable on the same port and store), a private redis-server
// with append-only persistence, and the service binaries with a shared environment. The
// `make run` program (e2e/devstack) and the chaos harness (e2e/chaos) are built on it.
//
// Nothing here needs Docker. redis-server must be on PATH.
package stack
