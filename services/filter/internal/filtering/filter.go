// Package filtering is the drain's filter service: one durable JetStream consumer, shared by every
// replica, over every accepted batch (<prefix>.events.>). For each message it runs the batch
// through the atomic reordering filter (pkg/reorder), which also marks fresh non-noop URLs
// dirty; in cache modes bust or warm it bumps the invalidation index of every non-noop event's
// URL (and asks the warmers to refetch); it publishes the fresh events to
// <prefix>.changed.<topic>; and only then acks. See docs/filter.md.
package filtering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/pkg/event"
	"github.com/routemaster-drain/drain/pkg/reorder"
	"github.com/routemaster-drain/drain/pkg/stream"
)

// ConsumerName is the filter's durable consumer name before the prefix: <prefix>_filter.
const ConsumerName = "filter"

// PublishTimeout bounds how long a message waits for JetStream to acknowledge what it
// publishes; past it the message is retried (and its publishes deduplicated on the next try).
const PublishTimeout = 10 * time.Second

// Headers of a message on <prefix>.changed.<topic>, besides Nats-Msg-Id.
const (
	// HeaderSourceStream names the stream of the batch the fresh events came from.
	HeaderSourceStream = stream.HeaderOrigStream
	// HeaderSourceSequence is that batch's stream sequence.
	HeaderSourceSequence = stream.HeaderOrigSequence
)

// Filter handles the messages of <prefix>.events.>. It is safe for concurrent use; run any
// number of Filters (in any number of processes) on one consumer.
type Filter struct {
	js      jetstream.JetStream
	names   stream.Names
	reorder *reorder.Filter
	drain   redis.UniversalClient // the reorder state's Redis
	ns      string                // its namespace
	cache   *cache.Cache          // nil in cache mode off
	mode    config.CacheMode
	dirty   bool
	cons    config.Consumer
	manage  stream.Manage
	log     *slog.Logger
	m       *metrics
}

// New returns a Filter for cfg. drain is the Redis of the filter state and dirty map
// (ROUTEMASTER_DRAIN_REDIS); cacheRedis the cache's (ROUTEMASTER_CACHE_REDIS), used only in
// cache modes bust and warm. Metrics are registered on reg.
func New(cfg *config.Config, js jetstream.JetStream, drain, cacheRedis redis.UniversalClient, reg prometheus.Registerer, log *slog.Logger) (*Filter, error) {
	rf, err := reorder.New(drain, cfg.ReorderOptions())
	if err != nil {
		return nil, err
	}
	f := &Filter{
		js:      js,
		names:   cfg.Streams.Names(),
		reorder: rf,
		drain:   drain,
		ns:      cfg.DrainRedis.Namespace,
		mode:    cfg.CacheMode,
		dirty:   cfg.Dirty,
		cons:    cfg.Consumer,
		manage:  stream.Manage(cfg.Streams.Manage),
		log:     log,
	}
	if f.mode != config.CacheOff {
		c, err := cache.New(cacheRedis, cfg.CacheOptions())
		if err != nil {
			return nil, err
		}
		f.cache = c
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	f.m = m
	return f, nil
}

// ConsumerConfig is the durable consumer the filter runs on.
func (f *Filter) ConsumerConfig() stream.ConsumerConfig {
	return stream.ConsumerConfig{
		Stream:         f.names.Stream(stream.Events),
		Durable:        f.names.Durable(ConsumerName),
		FilterSubject:  f.names.Subject(stream.Events, ">"),
		Stage:          ConsumerName,
		Concurrency:    f.cons.Concurrency,
		MaxAckPending:  f.cons.MaxAckPending,
		MaxDeliver:     f.cons.MaxDeliver,
		AckWait:        f.cons.AckWait,
		Backoff:        f.cons.RetryBackoff,
		BackoffMax:     f.cons.RetryBackoffMax,
		Manage:         f.manage,
		Log:            f.log,
		Observe:        f.m.observe,
		ObserveBacklog: f.m.backlog.Observe,
	}
}

// Run consumes until ctx is cancelled, then stops pulling, finishes and acks the messages in
// hand, and returns nil.
func (f *Filter) Run(ctx context.Context) error {
	if err := f.reorder.Load(ctx); err != nil {
		f.log.Warn("reorder script not preloaded; the first batch will load it", "err", err)
	}
	return stream.Consume(ctx, f.js, f.names.Subject(stream.DLQ, ""), f.ConsumerConfig(), f.Handle)
}

// Handle processes one message of <prefix>.events.<topic>; its result is a stream.Handler's.
//
// Effects, each idempotent under redelivery: (1) the reorder script records the new state and
// the dirty marks, atomically, under the message's stream sequence, then (2) in bust or warm
// mode the invalidation index of every non-noop event's URL is bumped, and (3) the fresh
// events, and in warm mode one warm request per bump, are published, and every publish is
// acknowledged by JetStream (stream.PublishAll: all sent at once, one wait). Only then does the caller ack. A crash anywhere before the ack
// redelivers the message, and the reorder script replays the first delivery's fresh events
// (see reorder.Filter.Run), so the changed message is published again with the same
// Nats-Msg-Id.
// A replay of a dead letter (drainctl dlq replay) runs under the dead-lettered message's
// sequence, so it reproduces the first delivery the same way (see sourceSeq).
//
// A Redis failure is classified by stream.RedisFailure: an outage is stream.Transient (the
// message waits out an outage of any length without being dead-lettered), any other failure a
// budgeted stream.Retry. A publish JetStream did not acknowledge (stream.PublishAll) is
// Transient. Only an undecodable or invalid batch is Permanent.
func (f *Filter) Handle(ctx context.Context, msg stream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return stream.Permanent(fmt.Errorf("message without JetStream metadata: %w", err))
	}
	events, err := event.Parse(msg.Data())
	if err != nil {
		return stream.Permanent(fmt.Errorf("undecodable batch: %w", err))
	}
	seq := f.sourceSeq(msg, md)
	sctx, span := startScript(ctx, seq, len(events))
	res, err := f.reorder.Run(sctx, seq, events, f.dirty)
	endScript(span, res, err)
	if err != nil {
		if errors.Is(err, reorder.ErrInvalidBatch) {
			return stream.Permanent(err)
		}
		return stream.RedisFailure(err)
	}
	// The index bumps come after the script, never beside it, though they do not depend on
	// what it finds: a batch's new state must be written before its bumps, so that a delete
	// of another batch that bumps after them reads that state and turns into a refresh
	// (overtaken). Run beside the script, a create's bump could land before its state, and an
	// older delete bumping in between would outrank it (TestConcurrentDeleteNeverOutranksNewerCreate
	// failed 1 of 150 URLs that way). A retry after a failed bump runs the script again, which
	// replays under seq, and the bumps again, which repeat harmlessly, as after a crash.
	var bumped []*event.Event
	var index []int64
	if f.cache != nil {
		if bumped, index, err = f.invalidate(ctx, events); err != nil {
			return err
		}
	}

	var msgs []*nats.Msg
	if f.mode == config.CacheWarm {
		if msgs, err = f.warmRequests(ctx, bumped, index, res.Fresh); err != nil {
			return err
		}
	}
	bumps := len(bumped)
	splits := 0
	for _, g := range event.GroupByTopic(res.Fresh) {
		changed, err := f.changed(md.Stream, seq, g)
		if err != nil {
			return err
		}
		if len(changed) > 1 {
			splits += len(changed)
		}
		msgs = append(msgs, changed...)
	}
	if err := stream.PublishAll(ctx, f.js, PublishTimeout, msgs); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			// A warm request for a URL of nearly max_payload: no retry makes it fit.
			return stream.Permanent(err)
		}
		return stream.Transient(err)
	}
	f.m.in.Add(float64(len(events)))
	f.m.fresh.Add(float64(len(res.Fresh)))
	f.m.stale.Add(float64(res.Stale))
	f.m.dirty.Add(float64(len(res.NewlyDirty)))
	f.m.bumps.Add(float64(bumps))
	f.m.splits.Add(float64(splits))
	if f.mode == config.CacheWarm {
		f.m.warms.Add(float64(bumps))
	}
	return nil
}

// sourceSeq is the stream sequence the message's effects are keyed on: its own, or, for a
// replay of a dead letter stored on the same stream (drainctl dlq replay sets the
// Drain-Replay-* headers), the sequence of the message that was dead-lettered. The replay
// thus reruns the first delivery: the reorder script hands on again what that delivery found
// fresh, and the changed messages keep their Nats-Msg-Id. A replay sequence that is not an
// earlier sequence of the stream (a hand-made header, a stream re-created since) is ignored.
func (f *Filter) sourceSeq(msg stream.Msg, md *jetstream.MsgMetadata) uint64 {
	h := msg.Headers()
	if h == nil || h.Get(stream.HeaderReplayStream) != md.Stream {
		return md.Sequence.Stream
	}
	raw := h.Get(stream.HeaderReplaySequence)
	seq, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || seq == 0 || seq >= md.Sequence.Stream {
		f.log.Warn("replay header ignored: not an earlier sequence of the stream; the batch runs under its own sequence",
			"stream", md.Stream, "seq", md.Sequence.Stream, stream.HeaderReplaySequence, raw)
		return md.Sequence.Stream
	}
	return seq
}

// changed returns the changed message(s) of the fresh events of one topic: one message, or,
// when they do not fit one NATS message (the server's max_payload), several, each a batch of
// whole consecutive events that fits, with the Nats-Msg-Id ChangedMsgID-<its content's
// stream.MsgID>. An event that cannot fit even alone is a stream.Permanent error.
func (f *Filter) changed(sourceStream string, seq uint64, g event.TopicGroup) ([]*nats.Msg, error) {
	subject := f.names.Subject(stream.Changed, g.Topic)
	id := ChangedMsgID(sourceStream, seq, g.Topic)
	msg := func(body []byte, id string) *nats.Msg {
		out := nats.NewMsg(subject)
		out.Data = body
		out.Header.Set(jetstream.MsgIDHeader, id)
		out.Header.Set(HeaderSourceStream, sourceStream)
		out.Header.Set(HeaderSourceSequence, strconv.FormatUint(seq, 10))
		return out
	}
	one := msg(g.JSON(), id)
	// The limit of a part: the longest Nats-Msg-Id a part can have.
	limit := stream.BodyLimit(f.js.Conn(), msg(nil, id+"-"+stream.MsgID(subject, nil)).Header)
	if len(one.Data) <= limit {
		return []*nats.Msg{one}, nil
	}
	parts, err := stream.SplitBatch(g.Events, limit)
	if err != nil {
		return nil, stream.Permanent(fmt.Errorf("changed events of topic %s: %w", g.Topic, err))
	}
	// Each part's id derives from its content: a redelivery that finds fewer events fresh
	// (another batch moved a URL on meanwhile) splits them differently, and those parts must
	// be stored, not taken for duplicates of the first delivery's.
	out := make([]*nats.Msg, len(parts))
	for i, p := range parts {
		out[i] = msg(p, id+"-"+stream.MsgID(subject, p))
	}
	return out, nil
}

// ChangedMsgID is the Nats-Msg-Id of the changed message published for the events of topic
// found fresh in the message at seq of the source stream. It depends on the source message, not
// on the content, because a redelivery may list the same events in another order.
func ChangedMsgID(sourceStream string, seq uint64, topic string) string {
	return "changed-" + sourceStream + "-" + strconv.FormatUint(seq, 10) + "-" + topic
}

// invalidate bumps the invalidation index of every non-noop event's URL, fresh or stale (the
// gem's Caching rule: a publisher whose clock runs behind still invalidates), in one round
// trip. It returns the events bumped and each one's new index; its error is already a handler
// result (stream.RedisFailure for the cache Redis).
func (f *Filter) invalidate(ctx context.Context, events []event.Event) ([]*event.Event, []int64, error) {
	urls := make([]string, 0, len(events))
	bumped := make([]*event.Event, 0, len(events))
	for i := range events {
		if events[i].Type != event.Noop {
			urls = append(urls, events[i].URL)
			bumped = append(bumped, &events[i])
		}
	}
	if len(urls) == 0 {
		return nil, nil, nil
	}
	index, err := f.cache.Invalidate(ctx, urls...)
	if err != nil {
		return nil, nil, stream.RedisFailure(err)
	}
	return bumped, index, nil
}

// warmRequests builds one warm request per bump: with the event's type when the event is the
// one kept for its URL (fresh), and cache.WarmRefresh otherwise, so a late delete never busts a
// resource that was updated since.
func (f *Filter) warmRequests(ctx context.Context, bumped []*event.Event, index []int64, fresh []event.Event) ([]*nats.Msg, error) {
	if len(bumped) == 0 {
		return nil, nil
	}
	kept := make(map[string]*event.Event, len(fresh))
	for i := range fresh {
		kept[fresh[i].URL] = &fresh[i]
	}
	types := make([]string, len(bumped))
	var deletes []int
	for i, e := range bumped {
		types[i] = cache.WarmRefresh
		if k := kept[e.URL]; k != nil && k.T == e.T && k.Type == e.Type {
			types[i] = string(e.Type)
			if e.Type == event.Delete {
				deletes = append(deletes, i)
			}
		}
	}
	if err := f.overtaken(ctx, bumped, deletes, types); err != nil {
		return nil, err
	}
	subject := f.names.Subject(stream.Warm, "")
	msgs := make([]*nats.Msg, 0, len(bumped)+3)
	for i, e := range bumped {
		typ := types[i]
		m, err := cache.WarmMsg(subject, cache.WarmRequest{URL: e.URL, Type: typ, T: e.T, Index: index[i]})
		if err != nil {
			return nil, stream.Retry(err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// overtaken turns into refreshes the deletes (bumped[i], i in deletes) that a newer event of
// their URL overtook after the reorder script found them fresh and before their bump. Another
// batch may be filtered between the two steps, with its newer create bumping the index first:
// the delete's warm request would then carry the higher index and bust what the create's
// fetch stored. The state is read after the bump, and every batch writes its state before its
// bumps (Handle), so either it shows the newer event (the delete asks for a refresh instead,
// and the origin decides), or that event's bump comes after this one and its warm request
// outranks the delete. It costs one round trip for a batch with
// fresh deletes, none otherwise.
func (f *Filter) overtaken(ctx context.Context, bumped []*event.Event, deletes []int, types []string) error {
	if len(deletes) == 0 {
		return nil
	}
	pipe := f.drain.Pipeline()
	cmds := make([]*redis.StringCmd, len(deletes))
	for j, i := range deletes {
		cmds[j] = pipe.Get(ctx, reorder.StateKey(f.ns, bumped[i].URL))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return stream.RedisFailure(fmt.Errorf("read the state of deleted URLs: %w", err))
	}
	for j, i := range deletes {
		raw, err := cmds[j].Result()
		if err != nil {
			continue // no state (expired): nothing newer is known
		}
		if st, err := reorder.ParseState(raw); err == nil && st.T > bumped[i].T {
			types[i] = cache.WarmRefresh
		}
	}
	return nil
}
