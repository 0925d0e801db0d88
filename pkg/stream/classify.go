package stream

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/replication"
)

// IsRedisOutage reports whether err, a failed Redis command, is an outage of the server rather
// than a failure of the message whose command it was: the server is unreachable (connection
// refused or reset, a closed connection, a timeout, DNS), the client has no connection to give
// (pool timeout or exhausted, client closed, no cluster node, ring shard or sentinel
// reachable), or the server answers that it cannot serve now: LOADING, READONLY, CLUSTERDOWN,
// TRYAGAIN, MASTERDOWN, BUSY (a script is running), OOM, MISCONF (persistence failing),
// NOREPLICAS, "max number of clients reached", or NOAUTH, WRONGPASS and NOPERM (the drain's
// credentials or ACL, which an operator fixes); or a write fewer replicas confirmed than
// replication.Wait asks for (replication.ErrTooFewReplicas). Such a failure ends when the server is back
// and retrying it later succeeds.
//
// Every other error is not an outage, and in particular every other reply of a live server:
// WRONGTYPE (something else wrote the key), a script's runtime error, CROSSSLOT, a malformed
// value. Those depend on the message's keys or data, and a retry budget bounds them. An
// unrecognised error is not an outage, so a failure no retry can fix still ends in the dead
// letters instead of being retried forever. It is cheap: a few errors.As/Is over err's chain.
func IsRedisOutage(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, replication.ErrTooFewReplicas) {
		return true
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return outageReply(reply.Error())
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return true
	}
	msg := err.Error()
	for _, s := range clientOutages {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// clientOutages are go-redis's own errors, without exported values, for a client that reaches
// no server at all.
var clientOutages = []string{
	"redis: cluster has no nodes",
	"redis: all ring shards are down",
	"redis: all sentinels specified in configuration are unreachable",
	"redis: connection unusable",
}

// outageCodes are the error codes (a reply's first word) of a server that cannot serve now.
var outageCodes = map[string]bool{
	"LOADING": true, "READONLY": true, "CLUSTERDOWN": true, "TRYAGAIN": true, "MASTERDOWN": true,
	"BUSY": true, "OOM": true, "MISCONF": true, "NOREPLICAS": true,
	"NOAUTH": true, "WRONGPASS": true, "NOPERM": true,
}

// outageReply classifies a Redis error reply. Some servers and proxies (KVRocks, Envoy) put
// "ERR " before the code, so it is looked for after it too.
func outageReply(msg string) bool {
	rest := strings.TrimPrefix(msg, "ERR ")
	if strings.HasPrefix(rest, "max number of clients reached") {
		return true
	}
	code, _, _ := strings.Cut(rest, " ")
	return outageCodes[code]
}

// RedisFailure returns the handler result for err, a failed Redis command: nil for nil, a
// *TransientError when IsRedisOutage(err) (the message waits out the outage and is never
// dead-lettered), and a *RetryError otherwise (redelivered after the backoff; dead-lettered
// once MaxDeliver deliveries failed). err stays in the chain for errors.Is and errors.As.
// Every stage classifies Redis failures with it, so one message fares the same in each.
func RedisFailure(err error) error {
	switch {
	case err == nil:
		return nil
	case IsRedisOutage(err):
		return Transient(err)
	}
	return Retry(err)
}
