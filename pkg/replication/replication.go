package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout is how long a WAIT waits for the replicas when Options.Timeout is zero.
const DefaultTimeout = time.Second

// Options configures Wait.
type Options struct {
	// Replicas is how many replicas must confirm every write before it counts as done. 0
	// turns waiting off (Wait installs nothing).
	Replicas int
	// Timeout bounds each WAIT (default DefaultTimeout). It must stay below the client's read
	// timeout (go-redis's ReadTimeout, 3 s by default): the WAIT's reply is read under it.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

func (o Options) validate() error {
	if o.Replicas < 0 {
		return fmt.Errorf("replication: replicas %d must not be negative", o.Replicas)
	}
	return nil
}

// ErrTooFewReplicas is in the chain of every error Wait's hook returns for a write that fewer
// than Options.Replicas replicas confirmed in time. The write itself happened on the master;
// it may be lost if the master fails now, so the caller must treat it as not done and retry
// it later (stream.IsRedisOutage reports it as an outage).
var ErrTooFewReplicas = errors.New("replication: too few replicas confirmed the write")

// Error is the error of a write that fewer replicas than wanted confirmed.
type Error struct {
	Addr  string // the master the write went to ("" when unknown)
	Want  int    // Options.Replicas
	Got   int64  // replicas that confirmed within Options.Timeout
	Cause error  // the WAIT's own failure, if it failed rather than answered a count
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("replication: WAIT on %s failed: %v", e.Addr, e.Cause)
	}
	return fmt.Sprintf("replication: %d of %d replicas of %s confirmed the write", e.Got, e.Want, e.Addr)
}

// Is makes errors.Is(err, ErrTooFewReplicas) true.
func (e *Error) Is(target error) bool { return target == ErrTooFewReplicas }

// Unwrap returns the WAIT's own failure, if any.
func (e *Error) Unwrap() error { return e.Cause }

// Wait makes every write command of rdb wait until o.Replicas replicas confirmed it: each
// write is followed, in the same round trip and on the same connection (WAIT counts only the
// writes of its own connection), by WAIT o.Replicas o.Timeout, sent to the node the write went
// to. A single write command becomes a two-command pipeline; a pipeline gets one WAIT appended
// per node it reaches. On a Redis Cluster the hook sits on every node client (OnNewNode), so
// each master that took a write, and only those, waits for its replicas; call Wait before
// rdb's first command. When fewer replicas answer in time, the write's command gets an *Error
// (errors.Is ErrTooFewReplicas) instead of its result.
//
// Reads are not waited on, except scripts (EVAL, EVALSHA, FCALL), which may write: a script
// costs a WAIT that returns at once when its connection wrote nothing unconfirmed. MULTI/EXEC
// transactions are refused with an error (go-redis gives no way to put a command after EXEC on
// the transaction's connection); the drain sends none.
//
// Cost: one more command per write round trip, and a write's latency becomes the time its
// replicas take to confirm it (the replicas' round trip, usually below a millisecond on one
// network); a replica that is down or lagging makes writes fail after o.Timeout.
func Wait(rdb redis.UniversalClient, o Options) error {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return err
	}
	if o.Replicas == 0 {
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		c.OnNewNode(func(node *redis.Client) { node.AddHook(&waitHook{o: o, rdb: node}) })
	case *redis.Client:
		c.AddHook(&waitHook{o: o, rdb: c})
	default:
		return fmt.Errorf("replication: cannot wait for replicas with a %T", rdb)
	}
	return nil
}

// waitHook appends WAIT to the writes of one node client.
type waitHook struct {
	o   Options
	rdb *redis.Client
}

// innerKey marks the pipeline a single write was turned into, so the pipeline hook does not
// append a second WAIT.
type innerKey struct{}

func (h *waitHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *waitHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !isWrite(cmd) || ctx.Value(innerKey{}) != nil {
			return next(ctx, cmd)
		}
		ictx := context.WithValue(ctx, innerKey{}, true)
		pipe := h.rdb.Pipeline()
		_ = pipe.Process(ictx, cmd)
		w := h.waitCmd(ictx)
		_ = pipe.Process(ictx, w)
		_, _ = pipe.Exec(ictx)
		if err := cmd.Err(); err != nil {
			return err
		}
		return h.check(w)
	}
}

func (h *waitHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		writes := false
		for _, c := range cmds {
			writes = writes || isWrite(c)
		}
		if !writes || ctx.Value(innerKey{}) != nil {
			return next(ctx, cmds)
		}
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			err := errors.New("replication: a MULTI/EXEC transaction cannot be followed by WAIT; use a pipeline")
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		w := h.waitCmd(ctx)
		err := next(ctx, append(cmds[:len(cmds):len(cmds)], w))
		if err != nil {
			return err
		}
		if err := h.check(w); err != nil {
			for _, c := range cmds {
				if isWrite(c) {
					c.SetErr(err)
				}
			}
			return err
		}
		return nil
	}
}

func (h *waitHook) waitCmd(ctx context.Context) *redis.IntCmd {
	return redis.NewIntCmd(ctx, "wait", h.o.Replicas, h.o.Timeout.Milliseconds())
}

// check turns the WAIT's reply into the write's result.
func (h *waitHook) check(w *redis.IntCmd) error {
	n, err := w.Result()
	switch {
	case err != nil:
		return &Error{Addr: h.rdb.Options().Addr, Want: h.o.Replicas, Cause: err}
	case n < int64(h.o.Replicas):
		return &Error{Addr: h.rdb.Options().Addr, Want: h.o.Replicas, Got: n}
	}
	return nil
}

// isWrite reports whether cmd may change data (and so must be confirmed by the replicas).
func isWrite(cmd redis.Cmder) bool { return writeCommands[cmd.Name()] }

// writeCommands are the commands that may write, by go-redis's lower-case name: the ones the
// drain sends (scripts, SADD, HINCRBY, PEXPIRE...) and the common writes of the other types.
var writeCommands = map[string]bool{
	"eval": true, "evalsha": true, "fcall": true,
	"set": true, "setex": true, "psetex": true, "setnx": true, "getset": true, "getdel": true, "getex": true,
	"mset": true, "msetnx": true, "append": true, "setrange": true,
	"incr": true, "incrby": true, "incrbyfloat": true, "decr": true, "decrby": true,
	"del": true, "unlink": true, "copy": true, "rename": true, "renamenx": true, "restore": true,
	"expire": true, "pexpire": true, "expireat": true, "pexpireat": true, "persist": true,
	"hset": true, "hsetnx": true, "hmset": true, "hdel": true, "hincrby": true, "hincrbyfloat": true,
	"sadd": true, "srem": true, "spop": true, "smove": true, "sinterstore": true, "sunionstore": true, "sdiffstore": true,
	"zadd": true, "zrem": true, "zincrby": true, "zpopmin": true, "zpopmax": true,
	"zremrangebyscore": true, "zremrangebyrank": true, "zremrangebylex": true, "zunionstore": true, "zinterstore": true,
	"lpush": true, "rpush": true, "lpop": true, "rpop": true, "lrem": true, "lset": true, "ltrim": true, "lmove": true,
	"xadd": true, "xdel": true, "xtrim": true, "pfadd": true, "geoadd": true,
}

// ReloadOnError makes a Redis Cluster client reload its slot map (ClusterClient.ReloadState,
// coalesced by go-redis) whenever a command or pipeline fails for want of a node: a refused,
// reset or timed-out connection, or CLUSTERDOWN, TRYAGAIN, MASTERDOWN or READONLY. After a
// master fails, the client so learns its promoted replica as soon as the cluster has elected
// it instead of on its periodic reload (ClusterOptions.ClusterStateReloadInterval, 60 s by
// default). Other clients are left alone. Cost: a CLUSTER SLOTS round trip per failing burst.
func ReloadOnError(rdb redis.UniversalClient) {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		c.AddHook(reloadHook{c})
	}
}

type reloadHook struct{ c *redis.ClusterClient }

func (h reloadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.reloadOn(ctx, err)
		return err
	}
}

func (h reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.reloadOn(ctx, err)
		return err
	}
}

func (h reloadHook) reloadOn(ctx context.Context, err error) {
	if nodeLost(err) {
		h.c.ReloadState(ctx)
	}
}

// nodeLost reports whether err means the node a command went to is gone or no longer serves
// its slots.
func nodeLost(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		code, _, _ := strings.Cut(strings.TrimPrefix(reply.Error(), "ERR "), " ")
		switch code {
		case "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY":
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "failed to dial")
}
