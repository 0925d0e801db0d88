// Package draintest starts private, disposable servers for tests: a JetStream-enabled NATS
// server and a Redis server, each on a random port with its own temporary storage, stopped by
// t.Cleanup. Tests never share them and can stop and restart them mid-test.
//
// NATS runs embedded from the nats-server Go module (StartNATS), or as an external nats-server
// binary (StartNATSBinary, to test against the version a system ships). Redis runs the
// redis-server binary from PATH; when there is none and a Docker engine answers, a
// testcontainers Redis container is used instead; when neither is available the test fails
// with a message naming both options.
//
// This is a module of its own, so services and apps never link nats-server or testcontainers
// into their binaries; only their tests import it.
package draintest
