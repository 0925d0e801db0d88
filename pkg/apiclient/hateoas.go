package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"slices"
	"time"
)

// HateoasResponse is a response whose JSON body may carry HAL-style `_links`
// (`{"_links":{"self":{"href":…},"widgets":{"href":"/widgets{?page}","templated":true}}}`).
// Link materialises a link as a Resource.
type HateoasResponse struct {
	*Response
	client *Client
	links  map[string]json.RawMessage
	order  []string // _links keys in document order
}

// Hateoas reads resp's `_links`. An empty body has no links; a body that is not a JSON object
// (or whose `_links` is not an object) is an error.
func (c *Client) Hateoas(resp *Response) (*HateoasResponse, error) {
	h := &HateoasResponse{Response: resp, client: c, links: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(resp.Body)) == 0 {
		return h, nil
	}
	var body struct {
		Links json.RawMessage `json:"_links"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("apiclient: %s: HATEOAS body is not a JSON object: %w", resp.URL, err)
	}
	if len(body.Links) == 0 || string(body.Links) == "null" {
		return h, nil
	}
	keys, err := objectKeys(body.Links)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %s: _links is not an object: %w", resp.URL, err)
	}
	if err := json.Unmarshal(body.Links, &h.links); err != nil {
		return nil, fmt.Errorf("apiclient: %s: _links is not an object: %w", resp.URL, err)
	}
	h.order = keys
	return h, nil
}

// objectKeys returns the keys of a JSON object in document order (encoding/json maps lose it,
// and the collection of an index page is the first array-valued link).
func objectKeys(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("want an object, got %s", raw[:min(len(raw), 20)])
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

type link struct {
	Href string `json:"href"`
}

// Has reports whether `_links` has an entry called name.
func (h *HateoasResponse) Has(name string) bool {
	_, ok := h.links[name]
	return ok
}

// LinkNames returns the names in `_links`, in document order.
func (h *HateoasResponse) LinkNames() []string { return slices.Clone(h.order) }

// Href returns the href (possibly a URI template) of the single link called name.
func (h *HateoasResponse) Href(name string) (string, error) {
	raw, ok := h.links[name]
	if !ok {
		return "", fmt.Errorf("apiclient: %s: %w %q (have %v)", h.URL, ErrNoLink, name, h.order)
	}
	var l link
	if err := json.Unmarshal(raw, &l); err != nil || l.Href == "" {
		return "", fmt.Errorf("apiclient: %s: %w %q: not an object with an href (a collection?)", h.URL, ErrNoLink, name)
	}
	return l.Href, nil
}

// Hrefs returns the hrefs of the collection link called name (an array of link objects).
func (h *HateoasResponse) Hrefs(name string) ([]string, error) {
	raw, ok := h.links[name]
	if !ok {
		return nil, fmt.Errorf("apiclient: %s: %w %q", h.URL, ErrNoLink, name)
	}
	var ls []link
	if err := json.Unmarshal(raw, &ls); err != nil {
		return nil, fmt.Errorf("apiclient: %s: %w %q: not an array of links", h.URL, ErrNoLink, name)
	}
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		if l.Href != "" {
			out = append(out, l.Href)
		}
	}
	return out, nil
}

// Link returns the Resource the link called name points to. Every href is treated as an
// RFC 6570 template (as the gem does, whatever `templated` says); a relative href is resolved
// against this response's URL. An unknown name, or a collection, is ErrNoLink.
func (h *HateoasResponse) Link(name string) (*Resource, error) {
	href, err := h.Href(name)
	if err != nil {
		return nil, err
	}
	return &Resource{client: h.client, template: href, base: h.URL}, nil
}

// BodyWithoutLinks returns the top-level members of the body except `_links`.
func (h *HateoasResponse) BodyWithoutLinks() (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(h.Body)) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(h.Body, &m); err != nil {
		return nil, fmt.Errorf("apiclient: %s: body is not a JSON object: %w", h.URL, err)
	}
	delete(m, "_links")
	return m, nil
}

// collection is the name of the first array-valued link other than self and curies.
func (h *HateoasResponse) collection() string {
	for _, k := range h.order {
		if k == "self" || k == "curies" {
			continue
		}
		if raw := bytes.TrimSpace(h.links[k]); len(raw) > 0 && raw[0] == '[' {
			return k
		}
	}
	return ""
}

// discovery is one memoised Discover result (or the fetch in flight).
type discovery struct {
	done    chan struct{}
	doc     *HateoasResponse
	err     error
	expires time.Time
}

// Discover GETs the API root at url and remembers it for the Client's discover TTL
// (Options.DiscoverTTL), so following links from the root costs one request per TTL. Concurrent
// callers share one fetch. Errors are not remembered. Unlike the gem, the memo belongs to
// this Client (not the process) and expires.
func (c *Client) Discover(ctx context.Context, url string) (*HateoasResponse, error) {
	for {
		c.discMu.Lock()
		d, ok := c.disc[url]
		if ok {
			select {
			case <-d.done:
				if time.Now().Before(d.expires) {
					c.discMu.Unlock()
					return d.doc, d.err
				}
				ok = false // expired
			default:
			}
		}
		if !ok {
			d = &discovery{done: make(chan struct{})}
			c.disc[url] = d
			c.discMu.Unlock()
			c.discover(ctx, url, d)
			return d.doc, d.err
		}
		c.discMu.Unlock()
		select {
		case <-d.done:
			var gaveUp callerGaveUp
			if !errors.As(d.err, &gaveUp) {
				return d.doc, d.err
			}
			// The caller whose fetch we waited for gave up: try our own.
		case <-ctx.Done():
			return nil, fmt.Errorf("apiclient: discover %s: %w", url, ctx.Err())
		}
	}
}

func (c *Client) discover(ctx context.Context, url string, d *discovery) {
	defer close(d.done)
	resp, err := c.Get(ctx, url)
	if err == nil {
		d.doc, err = c.Hateoas(resp)
	}
	d.err = err
	d.expires = time.Now().Add(c.o.DiscoverTTL)
	if err != nil {
		c.discMu.Lock()
		if c.disc[url] == d {
			delete(c.disc, url)
		}
		c.discMu.Unlock()
	}
}

// Resource is an RFC 6570 URL template with the REST verbs of the gem's RestResource.
type Resource struct {
	client   *Client
	template string
	base     string // URL a relative template is resolved against
}

// Resource returns the Resource of an absolute URL template such as
// "https://api.example.com/widgets/{id}".
func (c *Client) Resource(template string) *Resource { return &Resource{client: c, template: template} }

// URL returns the template as given.
func (r *Resource) URL() string { return r.template }

// Expand expands the template with vars (missing variables expand to nothing) and resolves it
// against the URL of the response it came from.
func (r *Resource) Expand(vars map[string]string) (string, error) {
	s, err := Expand(r.template, vars)
	if err != nil {
		return "", err
	}
	return resolve(r.base, s)
}

func resolve(base, ref string) (string, error) {
	if base == "" {
		return ref, nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("apiclient: %q: %w", base, ErrBadURL)
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("apiclient: %q: %w", ref, ErrBadURL)
	}
	return b.ResolveReference(u).String(), nil
}

func idVars(id string) map[string]string {
	if id == "" {
		return nil
	}
	return map[string]string{"id": id}
}

// Show GETs the template expanded with {id} (empty id: no variable).
func (r *Resource) Show(ctx context.Context, id string, ro ...RequestOptions) (*HateoasResponse, error) {
	u, err := r.Expand(idVars(id))
	if err != nil {
		return nil, err
	}
	return r.hateoas(r.client.Get(ctx, u, ro...))
}

// Create POSTs body (JSON unless []byte or string) to the template expanded with no variables.
func (r *Resource) Create(ctx context.Context, body any, ro ...RequestOptions) (*HateoasResponse, error) {
	u, err := r.Expand(nil)
	if err != nil {
		return nil, err
	}
	return r.hateoas(r.client.Post(ctx, u, body, ro...))
}

// Update PATCHes body to the template expanded with {id}.
func (r *Resource) Update(ctx context.Context, id string, body any, ro ...RequestOptions) (*HateoasResponse, error) {
	u, err := r.Expand(idVars(id))
	if err != nil {
		return nil, err
	}
	return r.hateoas(r.client.Patch(ctx, u, body, ro...))
}

// Destroy DELETEs the template expanded with {id}.
func (r *Resource) Destroy(ctx context.Context, id string, ro ...RequestOptions) (*Response, error) {
	u, err := r.Expand(idVars(id))
	if err != nil {
		return nil, err
	}
	return r.client.Delete(ctx, u, ro...)
}

func (r *Resource) hateoas(resp *Response, err error) (*HateoasResponse, error) {
	if err != nil {
		return nil, err
	}
	return r.client.Hateoas(resp)
}

// Index walks a paginated collection and yields every item, page after page:
//   - filters that name a template variable expand it ("/widgets{?page,per_page}"), the others
//     become query parameters; on later pages, filters missing from the `next` href are added;
//   - the collection is the first array-valued link of the first page (not self or curies);
//   - the items of a page are fetched in parallel as futures (bounded by Options.Concurrency) and
//     yielded in page order; an item that fails is yielded as (nil, err) and the walk goes on;
//   - a page that fails is yielded as (nil, err) and ends the walk;
//   - pages are fetched only as far as the caller iterates: breaking after the first item
//     costs one page (and that page's items).
func (r *Resource) Index(ctx context.Context, filters url.Values, ro ...RequestOptions) iter.Seq2[*Response, error] {
	return func(yield func(*Response, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		vars := map[string]string{}
		query := url.Values{}
		tvars := TemplateVars(r.template)
		for k, v := range filters {
			if slices.Contains(tvars, k) && len(v) > 0 {
				vars[k] = v[0]
			} else {
				query[k] = v
			}
		}
		page, err := r.Expand(vars)
		if err == nil {
			page, err = withQuery(page, query)
		}
		if err != nil {
			yield(nil, err)
			return
		}
		collection := ""
		for page != "" {
			resp, err := r.client.Get(ctx, page, ro...)
			var doc *HateoasResponse
			if err == nil {
				doc, err = r.client.Hateoas(resp)
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if collection == "" {
				collection = doc.collection()
			}
			var hrefs []string
			if collection != "" && doc.Has(collection) {
				if hrefs, err = doc.Hrefs(collection); err != nil {
					yield(nil, err)
					return
				}
			}
			futures := make([]*Future, len(hrefs))
			for i, href := range hrefs {
				u, err := resolve(page, href)
				if err != nil {
					futures[i] = failed(err)
					continue
				}
				futures[i] = r.client.GetAsync(ctx, u, ro...)
			}
			for _, f := range futures {
				if !yield(f.Wait()) {
					return
				}
			}
			page = ""
			if doc.Has("next") {
				next, err := doc.Href("next")
				if err == nil {
					next, err = resolve(resp.URL, next)
				}
				if err == nil {
					next, err = withMissing(next, query)
				}
				if err != nil {
					yield(nil, err)
					return
				}
				page = next
			}
		}
	}
}

func failed(err error) *Future {
	f := &Future{done: make(chan struct{}), err: err}
	close(f.done)
	return f
}

// withQuery sets q's parameters on rawURL (replacing those of the same name).
func withQuery(rawURL string, q url.Values) (string, error) {
	if len(q) == 0 {
		return rawURL, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("apiclient: %q: %w", rawURL, ErrBadURL)
	}
	all := u.Query()
	for k, v := range q {
		all[k] = v
	}
	u.RawQuery = all.Encode()
	return u.String(), nil
}

// withMissing adds q's parameters that rawURL's query lacks (a server's next link wins).
func withMissing(rawURL string, q url.Values) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("apiclient: %q: %w", rawURL, ErrBadURL)
	}
	all := u.Query()
	changed := false
	for k, v := range q {
		if _, ok := all[k]; !ok {
			all[k] = v
			changed = true
		}
	}
	if changed {
		u.RawQuery = all.Encode()
	}
	return u.String(), nil
}
