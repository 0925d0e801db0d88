// Package scriptpipe runs one Redis Lua script several times, each call on its own keys, in
// one pipeline: one round trip on a single server, one per node on Redis Cluster (go-redis
// splits a cluster pipeline by slot and sends each node its part at once).
package scriptpipe

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Call is one run of the script: its keys (all in one hash slot) and arguments.
type Call struct {
	Keys []string
	Args []any
}

// pipeliner is what every go-redis client (Client, ClusterClient, Ring, Conn) has beside
// redis.Scripter.
type pipeliner interface {
	Pipeline() redis.Pipeliner
}

// Run runs s once per call and returns the replies in the order of calls; each reply carries
// its own error. The calls go out as EVALSHA in one pipeline; those that found the script
// missing on their node (NOSCRIPT: a restarted or failed-over server, which ran nothing)
// are sent again as EVAL in a second pipeline, which also loads the script there. A client
// without Pipeline (a bare redis.Scripter) gets one round trip per call.
//
// The calls are not atomic together: each one is atomic on its own, and after an error some
// may have run and others not.
func Run(ctx context.Context, c redis.Scripter, s *redis.Script, calls []Call) []*redis.Cmd {
	out := make([]*redis.Cmd, len(calls))
	p, ok := c.(pipeliner)
	if !ok {
		for i, call := range calls {
			out[i] = s.Run(ctx, c, call.Keys, call.Args...)
		}
		return out
	}
	pipe := p.Pipeline()
	for i, call := range calls {
		out[i] = s.EvalSha(ctx, pipe, call.Keys, call.Args...)
	}
	_, _ = pipe.Exec(ctx) // every reply holds its own error
	var missing []int
	for i, cmd := range out {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return out
	}
	pipe = p.Pipeline()
	for _, i := range missing {
		out[i] = s.Eval(ctx, pipe, calls[i].Keys, calls[i].Args...)
	}
	_, _ = pipe.Exec(ctx)
	return out
}

// Err returns the first error among replies, or nil.
func Err(replies []*redis.Cmd) error {
	for _, r := range replies {
		if err := r.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}
