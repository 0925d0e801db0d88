package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/routemaster-drain/drain/pkg/stream"
)

// WarmRequest is the body of a message on <prefix>.warm: the filter asks the warmers to bring
// URL's cache up to date after an event of Type at T changed it. Index is the URL's
// invalidation index after the filter's bump (the value Invalidate returned): an entry stored
// at Index or later already covers the request.
//
// Type is the event's type when the event was fresh, and WarmRefresh when it was stale: a
// stale event still invalidates (the gem's rule, for publishers whose clocks run behind), but
// its type says nothing about the resource's current state (a late delete must not bust a
// resource updated since), so the warmer asks the origin.
//
// On the wire it is JSON: {"url":"https://…","type":"create|update|delete|refresh","t":<ms>,"index":<n>}.
type WarmRequest struct {
	URL   string `json:"url"`
	Type  string `json:"type"`
	T     int64  `json:"t"`
	Index int64  `json:"index"`
}

// Warm request types.
const (
	WarmCreate = "create"
	WarmUpdate = "update"
	WarmDelete = "delete"
	// WarmRefresh asks for a fetch whatever the resource's state: 2xx stores, 404/410 busts.
	WarmRefresh = "refresh"
)

// ErrBadWarmRequest is wrapped by every validation error of ParseWarmRequest.
var ErrBadWarmRequest = errors.New("bad warm request")

// Validate reports whether r is well formed: an absolute http(s) URL, a known type, and
// non-negative t and index.
func (r WarmRequest) Validate() error {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: url %q must be an absolute http(s) URL", ErrBadWarmRequest, r.URL)
	}
	switch r.Type {
	case WarmCreate, WarmUpdate, WarmDelete, WarmRefresh:
	default:
		return fmt.Errorf("%w: type %q must be create, update, delete or refresh", ErrBadWarmRequest, r.Type)
	}
	if r.T < 0 || r.Index < 0 {
		return fmt.Errorf("%w: t and index must not be negative", ErrBadWarmRequest)
	}
	return nil
}

// ParseWarmRequest decodes and validates a warm request body.
func ParseWarmRequest(body []byte) (WarmRequest, error) {
	var r WarmRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrBadWarmRequest, err)
	}
	return r, r.Validate()
}

// WarmMsg returns the message that publishes r on subject (Names.Subject(stream.Warm, "")),
// with its content-derived Nats-Msg-Id "warm-" + stream.MsgID(subject, body): a publish
// retried with the same body within the stream's duplicate window is stored once. A
// redelivered filter message does not give the same body, because each delivery invalidates
// again and so carries a new Index; its requests are stored again and cost extra refetches,
// which are harmless (the newest index wins, and a covered request is acked without a fetch).
func WarmMsg(subject string, r WarmRequest) (*nats.Msg, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, "warm-"+stream.MsgID(subject, body))
	return m, nil
}
