// Package draintest starts private, disposable servers for tests of the drain and of the apps
// that use it: a JetStream-enabled nats-server and a redis-server, each a real process on a
// random loopback port with its own temporary storage, stopped at t.Cleanup. Tests never share
// them and can kill them (a crash) and start them again mid-test, on the same port and store.
//
// StartNATS runs nats-server NATSServerVersion, built once per machine from the Go module
// proxy (NATSServerBinary); StartNATSWith runs it with NATSOptions (MaxPayload: a
// small max_payload, to test what happens at the limit); StartNATSBinary runs another executable,
// such as the release a Linux distribution ships. StartRedis runs redis-server from PATH;
// StartRedisCluster runs a Redis Cluster of several of them, joined with redis-cli
// (LaunchRedisCluster does the same for programs such as benchmarks, returning errors instead
// of failing a test).
//
// The package adds no dependency to an app's module graph beyond the library's own: the
// servers are separate programs, never linked in.
package draintest
