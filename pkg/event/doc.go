// Package event is the Routemaster event model and the parser of the batches the bus POSTs.
//
// A batch is a JSON array of events. Parse decodes it once and keeps, for every event, the
// exact bytes it arrived as (Event.Raw), so that re-publishing an event never re-encodes it and
// unknown fields survive untouched:
//
//	events, err := event.Parse(body)
//	if err != nil {
//		var perr *event.ParseError // names the first bad event and field
//		...
//	}
//	for _, group := range event.GroupByTopic(events) {
//		publish(group.Topic, group.JSON()) // "[raw,raw,...]"
//	}
//
// ParseAppend reuses a caller's slice; ScanAppend also leaves Event.URL empty (the URL is still
// checked), for a caller that forwards Raw and never reads it, so a batch allocates nothing per
// event.
//
// Parse is tolerant where the bus is (fractional t, absent data, unknown fields, an empty
// array) and strict where the Ruby gem crashed or let nonsense through: a JSON object, a scalar
// or a non-object element, a t that is not a number, an unknown type, a URL that is not an
// absolute http(s) URL, an empty or subject-unsafe topic, and a data that is not an object are
// all rejected with a *ParseError.
package event
