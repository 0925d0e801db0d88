package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// kind is a sentinel error that may belong to a broader group (ErrNotFound is also an
// ErrClientError), so errors.Is matches both the precise kind and its group.
type kind struct {
	msg   string
	group error
}

func (k *kind) Error() string { return k.msg }
func (k *kind) Unwrap() error { return k.group }

func newKind(msg string, group error) error { return &kind{msg: msg, group: group} }

// Status groups. Every non-2xx response maps to exactly one kind below; errors.Is(err, group)
// also holds for the group the kind belongs to.
var (
	// ErrRedirect: any 3xx. Redirects are never followed; the Location is in StatusError.Header.
	ErrRedirect = newKind("redirect not followed", nil)
	// ErrClientError: any 4xx (the group of every 4xx kind below; alone for the other 4xx codes
	// such as 402, 407, 408, 411, 414–418, 421, 423–428, 431, 451).
	ErrClientError = newKind("client error", nil)
	// ErrServerError: any 5xx (the group of ErrBadGateway and ErrUnavailable; alone for 500,
	// 501, 504–599).
	ErrServerError = newKind("server error", nil)
	// ErrUnexpectedStatus: a status outside 200–599 that is not a success (1xx, or nonsense).
	ErrUnexpectedStatus = newKind("unexpected status", nil)

	// ErrInvalid: 400, 413 and 422 (the gem's InvalidResource; 422 was FatalResource there).
	ErrInvalid = newKind("invalid resource", ErrClientError)
	// ErrUnauthorized: 401.
	ErrUnauthorized = newKind("unauthorized", ErrClientError)
	// ErrForbidden: 403 (the gem folds it into UnauthorizedResourceAccess with 401).
	ErrForbidden = newKind("forbidden", ErrClientError)
	// ErrNotFound: 404.
	ErrNotFound = newKind("not found", ErrClientError)
	// ErrMethodNotAllowed: 405.
	ErrMethodNotAllowed = newKind("method not allowed", ErrClientError)
	// ErrIncompatibleVersion: 406 and 412 (the origin cannot serve the requested
	// `Accept: application/json;v=N`; the gem returned 406 as a success).
	ErrIncompatibleVersion = newKind("incompatible version", ErrClientError)
	// ErrConflict: 409.
	ErrConflict = newKind("conflict", ErrClientError)
	// ErrGone: 410.
	ErrGone = newKind("gone", ErrClientError)
	// ErrThrottled: 429.
	ErrThrottled = newKind("throttled", ErrClientError)
	// ErrBadGateway: 502.
	ErrBadGateway = newKind("bad gateway", ErrServerError)
	// ErrUnavailable: 503.
	ErrUnavailable = newKind("service unavailable", ErrServerError)
)

// Errors that are not about a status.
var (
	// ErrTimeout: the origin did not answer (headers and body) within ROUTEMASTER_CACHE_TIMEOUT.
	// Idempotent requests are retried twice before it is returned.
	ErrTimeout = errors.New("timeout")
	// ErrConnection: the request never got a response (refused, reset, DNS, TLS verification...).
	ErrConnection = errors.New("connection failed")
	// ErrCircuitOpen: the host's circuit breaker is open (or half-open with its probe in
	// flight); no request was sent. It wraps gobreaker's ErrOpenState or ErrTooManyRequests.
	ErrCircuitOpen = errors.New("circuit open")
	// ErrHostNotAllowed: the URL's host is not in DRAIN_WARM_ALLOW_HOSTS; no request was sent.
	ErrHostNotAllowed = errors.New("host not allowed")
	// ErrAddressNotAllowed: the address the client was about to connect to is link-local
	// (169.254.0.0/16, fe80::/10, where cloud metadata endpoints answer) or the AWS metadata
	// address fd00:ec2::254. It is checked on the resolved address of every connection,
	// whatever AllowHosts says, so a name that resolves or rebinds there is refused too;
	// no connection was made (see Options.Transport for a caller's own dialer). Not
	// Retryable: the same name is refused again.
	ErrAddressNotAllowed = errors.New("address not allowed")
	// ErrTooLarge: the response body is longer than DRAIN_WARM_MAX_BODY.
	ErrTooLarge = errors.New("response body too large")
	// ErrBadURL: the URL is not an absolute http(s) URL, or a template does not expand.
	ErrBadURL = errors.New("bad URL")
	// ErrNoLink: a HATEOAS response has no usable link of that name.
	ErrNoLink = errors.New("no such link")
)

// ExcerptLimit is the most body bytes a StatusError keeps.
const ExcerptLimit = 512

// StatusError is the error of every non-2xx response. Use errors.As to read it and
// errors.Is(err, ErrNotFound) (or a group such as ErrClientError) to classify it.
type StatusError struct {
	Status int         // HTTP status code
	Method string      // request method
	URL    string      // request URL (credentials are never part of it)
	Header http.Header // response headers (Location of a 3xx, Retry-After of a 429/503...)
	Body   string      // first ExcerptLimit bytes of the body, as valid UTF-8
	Kind   error       // the precise kind, e.g. ErrGone; errors.Is matches it and its group
}

// Error returns "<METHOD> <URL>: <status> <text> (<kind>): <excerpt>".
func (e *StatusError) Error() string {
	s := fmt.Sprintf("apiclient: %s %s: %d %s (%v)", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Kind)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Unwrap returns the kind, so errors.Is(err, ErrNotFound) and errors.Is(err, ErrClientError) work.
func (e *StatusError) Unwrap() error { return e.Kind }

// JSON decodes the body excerpt into v. It returns an error, never panics, on a non-JSON or
// truncated body (the gem's BaseError#body raised on non-JSON bodies).
func (e *StatusError) JSON(v any) error {
	if err := json.Unmarshal([]byte(e.Body), v); err != nil {
		return fmt.Errorf("apiclient: error body of %s %s is not JSON: %w", e.Method, e.URL, err)
	}
	return nil
}

// KindOf returns the kind of a non-2xx status: the mapping table of docs/apiclient.md.
func KindOf(status int) error {
	switch {
	case status >= 300 && status < 400:
		return ErrRedirect
	case status >= 400 && status < 500:
		switch status {
		case 400, 413, 422:
			return ErrInvalid
		case 401:
			return ErrUnauthorized
		case 403:
			return ErrForbidden
		case 404:
			return ErrNotFound
		case 405:
			return ErrMethodNotAllowed
		case 406, 412:
			return ErrIncompatibleVersion
		case 409:
			return ErrConflict
		case 410:
			return ErrGone
		case 429:
			return ErrThrottled
		}
		return ErrClientError
	case status >= 500 && status < 600:
		switch status {
		case 502:
			return ErrBadGateway
		case 503:
			return ErrUnavailable
		}
		return ErrServerError
	}
	return ErrUnexpectedStatus
}

func newStatusError(method, url string, resp *Response) *StatusError {
	body := resp.Body
	if len(body) > ExcerptLimit {
		body = body[:ExcerptLimit]
		// Drop a rune the limit cut in two rather than turning it into U+FFFD.
		for i := len(body) - 1; i >= 0 && i >= len(body)-utf8.UTFMax; i-- {
			if utf8.RuneStart(body[i]) {
				if !utf8.FullRune(body[i:]) {
					body = body[:i]
				}
				break
			}
		}
	}
	return &StatusError{
		Status: resp.Status,
		Method: method,
		URL:    url,
		Header: resp.Header,
		Body:   strings.ToValidUTF8(string(body), "\uFFFD"),
		Kind:   KindOf(resp.Status),
	}
}

// Retryable reports whether err is worth retrying later: a 5xx, a 429, a timeout, a
// connection failure or an open circuit. 3xx and other 4xx will fail the same way again, as
// will ErrHostNotAllowed and ErrAddressNotAllowed.
func Retryable(err error) bool {
	return errors.Is(err, ErrServerError) || errors.Is(err, ErrThrottled) || errors.Is(err, ErrTimeout) ||
		errors.Is(err, ErrConnection) || errors.Is(err, ErrCircuitOpen)
}
