package cache

import (
	"context"
	"net/http"
	"strconv"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

// APIFetcher returns a Fetcher that reads origins through the API client: its headers, auth,
// timeouts, breaker, allowlist and size cap apply, and its typed errors (*apiclient.StatusError,
// apiclient.ErrNotFound, ErrGone, ErrCircuitOpen...) are returned unchanged.
func APIFetcher(c *apiclient.Client) Fetcher {
	return FetcherFunc(func(ctx context.Context, url string, v Variant) (*Response, error) {
		ro := apiclient.RequestOptions{Locale: v.Locale}
		if v.Version != "" {
			if n, err := strconv.Atoi(v.Version); err == nil && n > 0 {
				ro.Version = n
			} else {
				ro.Header = http.Header{"Accept": {v.Accept()}}
			}
		}
		r, err := c.Get(ctx, url, ro)
		if err != nil {
			return nil, err
		}
		return &Response{Status: r.Status, Header: r.Header, Body: r.Body}, nil
	})
}
