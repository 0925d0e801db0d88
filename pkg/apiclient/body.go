package apiclient

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-resty/resty/v2"
)

// readBody reads and closes the body of resp, at most limit bytes when limit > 0 (beyond it
// the error is resty.ErrResponseBodyTooLarge, as resty's own limit reports it). The client
// reads bodies itself (resty is told not to parse them) so that a body of known length costs
// one allocation of its size, and the connection goes back to the pool: the body is always
// read to its end. A gzip body the transport did not decode (the caller asked for it with its
// own Accept-Encoding) is decoded, as resty does.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	n := resp.ContentLength
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") && n != 0 {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		defer gz.Close()
		r, n = gz, -1 // the decoded length is unknown
	}
	if limit > 0 && n > limit {
		return nil, resty.ErrResponseBodyTooLarge
	}
	if n >= 0 {
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		// Reach the end, so the transport sees the whole body read and keeps the connection.
		if m, err := r.Read(make([]byte, 1)); m > 0 || (err != nil && !errors.Is(err, io.EOF)) {
			return nil, errors.Join(errors.New("body longer than its Content-Length"), err)
		}
		return body, nil
	}
	if limit <= 0 {
		return io.ReadAll(r)
	}
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, resty.ErrResponseBodyTooLarge
	}
	return body, nil
}
