package event

import (
	"bytes"
	"encoding/json"
)

// Type is an event's type: one of Create, Update, Delete or Noop.
type Type string

// The four event types the bus accepts from publishers.
const (
	Create Type = "create"
	Update Type = "update"
	Delete Type = "delete"
	Noop   Type = "noop"
)

// Valid reports whether t is one of the four types the bus sends.
func (t Type) Valid() bool {
	switch t {
	case Create, Update, Delete, Noop:
		return true
	}
	return false
}

// Event is one Routemaster event.
//
// Raw holds the exact JSON object the event was parsed from (unknown fields included); it is
// what MarshalJSON writes, so an event travels through the system byte for byte. An Event built
// in code has no Raw and is marshalled from its fields.
type Event struct {
	Topic string          `json:"topic"`
	Type  Type            `json:"type"`
	URL   string          `json:"url"`
	T     int64           `json:"t"` // milliseconds since the Unix epoch; fractions truncated
	Data  json.RawMessage `json:"data,omitempty"`
	Raw   json.RawMessage `json:"-"`
}

// wireFields is Event without its methods, so marshalling it does not recurse.
type wireFields struct {
	Topic string          `json:"topic"`
	Type  Type            `json:"type"`
	URL   string          `json:"url"`
	T     int64           `json:"t"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// MarshalJSON writes Raw when the event was parsed, and the fields otherwise.
func (e Event) MarshalJSON() ([]byte, error) {
	if len(e.Raw) > 0 {
		return e.Raw, nil
	}
	return json.Marshal(wireFields{e.Topic, e.Type, e.URL, e.T, e.Data})
}

// UnmarshalJSON parses one event with the same rules as Parse applies to each element.
func (e *Event) UnmarshalJSON(b []byte) error {
	ev, err := parseEvent(bytes.TrimSpace(b), 0)
	if err != nil {
		return err
	}
	*e = ev
	return nil
}

// AppendJSON appends the JSON array of events to dst, using each event's Raw bytes when it has
// them, and returns the extended buffer.
func AppendJSON(dst []byte, events []Event) ([]byte, error) {
	dst = append(dst, '[')
	for i, e := range events {
		if i > 0 {
			dst = append(dst, ',')
		}
		if len(e.Raw) > 0 {
			dst = append(dst, e.Raw...)
			continue
		}
		b, err := e.MarshalJSON()
		if err != nil {
			return nil, err
		}
		dst = append(dst, b...)
	}
	return append(dst, ']'), nil
}

// TopicGroup is the events of one topic, in batch order.
type TopicGroup struct {
	Topic  string
	Events []Event
}

// JSON returns the group as a JSON array, built from the events' Raw bytes.
func (g TopicGroup) JSON() []byte {
	n := 2
	for _, e := range g.Events {
		n += len(e.Raw) + 1
	}
	b, _ := AppendJSON(make([]byte, 0, n), g.Events)
	return b
}

// GroupByTopic splits a batch by topic. Groups come in the order of each topic's first event;
// events keep their batch order inside a group.
func GroupByTopic(events []Event) []TopicGroup {
	var groups []TopicGroup
	index := make(map[string]int, 4)
	for _, e := range events {
		i, ok := index[e.Topic]
		if !ok {
			i = len(groups)
			index[e.Topic] = i
			groups = append(groups, TopicGroup{Topic: e.Topic})
		}
		groups[i].Events = append(groups[i].Events, e)
	}
	return groups
}
