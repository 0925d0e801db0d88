package receiver

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/event"
)

// batch is the per-request working memory of the receiver, pooled so that a steady stream of
// batches allocates almost nothing: the body, the parsed events (whose Raw bytes alias the
// body), one message buffer per topic and the messages published.
type batch struct {
	body   []byte
	events []event.Event
	groups []group
	msgs   []*nats.Msg    // the messages of the last publish, reused with their headers
	index  map[string]int // topic → group, used once a batch has many topics
	keep   bool           // buffers may still be referenced: do not pool
}

// group is one topic's message: the JSON array of its events' original bytes, in batch
// order (the bytes event.TopicGroup.JSON returns), and its event count per type.
type group struct {
	topic string
	state *topicState // set by publish
	body  []byte
	types [4]int // counts by eventTypes index
}

var eventTypes = [4]event.Type{event.Create, event.Update, event.Delete, event.Noop}

// linearTopics is how many topics are looked up by scanning before a map is used.
const linearTopics = 8

func (s *Server) getBatch() *batch {
	if b, ok := s.batches.Get().(*batch); ok {
		return b
	}
	return &batch{body: make([]byte, 0, 16<<10), events: make([]event.Event, 0, 128)}
}

// putBatch returns b to the pool unless it grew past the configured limits.
func (s *Server) putBatch(b *batch) {
	if b.keep || cap(b.body) > int(s.cfg.MaxBody)+1 || len(b.groups) > linearTopics || len(b.msgs) > 2*linearTopics {
		return
	}
	clear(b.events[:cap(b.events)]) // drop references to strings of this batch
	b.events = b.events[:0]
	b.body = b.body[:0]
	for i := range b.groups {
		b.groups[i] = group{body: b.groups[i].body[:0]}
	}
	b.groups = b.groups[:0]
	b.index = nil
	for _, m := range b.msgs {
		m.Data = nil
	}
	s.batches.Put(b)
}

// msg sets b.msgs[i], the i-th message of this publish (messages are set in order from 0),
// reusing the message and header map a previous batch published from that slot: it has a
// Nats-Msg-Id header and nothing left of the last publish (such as its traceparent).
func (b *batch) msg(i int, subject string, body []byte, id string) {
	if i == len(b.msgs) {
		b.msgs = append(b.msgs, &nats.Msg{Header: nats.Header{jetstream.MsgIDHeader: make([]string, 1)}})
	}
	m := b.msgs[i]
	h := m.Header
	for k := range h {
		if k != jetstream.MsgIDHeader {
			delete(h, k)
		}
	}
	ids := h[jetstream.MsgIDHeader]
	if len(ids) != 1 {
		ids = make([]string, 1)
		h[jetstream.MsgIDHeader] = ids
	}
	ids[0] = id
	*m = nats.Msg{Subject: subject, Data: body, Header: h}
}

// group splits b.events by topic into b.groups, in the order of each topic's first event.
func (b *batch) group() {
	for i := range b.events {
		e := &b.events[i]
		g := b.find(e.Topic)
		if len(g.body) == 0 {
			g.body = append(g.body, '[')
		} else {
			g.body = append(g.body, ',')
		}
		g.body = append(g.body, e.Raw...)
		switch e.Type {
		case event.Create:
			g.types[0]++
		case event.Update:
			g.types[1]++
		case event.Delete:
			g.types[2]++
		default:
			g.types[3]++
		}
	}
	for i := range b.groups {
		b.groups[i].body = append(b.groups[i].body, ']')
	}
}

// find returns the group of topic, adding it when new. A few topics are found by scanning;
// past linearTopics a map takes over, so a batch of many topics stays linear.
func (b *batch) find(topic string) *group {
	if b.index != nil {
		if i, ok := b.index[topic]; ok {
			return &b.groups[i]
		}
	} else {
		for i := range b.groups {
			if b.groups[i].topic == topic {
				return &b.groups[i]
			}
		}
	}
	if len(b.groups) < cap(b.groups) {
		b.groups = b.groups[:len(b.groups)+1] // reuse the slot's buffer
	} else {
		b.groups = append(b.groups, group{})
	}
	i := len(b.groups) - 1
	g := &b.groups[i]
	g.topic, g.body, g.types = topic, g.body[:0], [4]int{}
	switch {
	case b.index != nil:
		b.index[topic] = i
	case len(b.groups) > linearTopics:
		b.index = make(map[string]int, 2*len(b.groups))
		for j := range b.groups {
			b.index[b.groups[j].topic] = j
		}
	}
	return g
}
