package cache

import (
	"context"
	"strconv"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

// APIFetcher returns a Fetcher that reads origins through the API client: its headers, auth,
// timeouts, breaker, allowlist and size cap apply, and its typed errors (*apiclient.StatusError,
// apiclient.ErrNotFound, ErrGone, ErrCircuitOpen...) are returned unchanged.
func APIFetcher(c *apiclient.Client) Fetcher {
	return FetcherFunc(func(ctx context.Context, url string, v Variant) (*Response, error) {
		var opts []apiclient.RequestOption
		if n, err := strconv.Atoi(v.Version); err == nil && n > 0 {
			opts = append(opts, apiclient.WithVersion(n))
		} else if v.Version != "" {
			opts = append(opts, apiclient.WithHeader("Accept", v.Accept()))
		}
		if v.Locale != "" {
			opts = append(opts, apiclient.WithLocale(v.Locale))
		}
		r, err := c.Get(ctx, url, opts...)
		if err != nil {
			return nil, err
		}
		return &Response{Status: r.Status, Header: r.Header, Body: r.Body}, nil
	})
}
