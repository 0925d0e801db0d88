package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/routemaster-drain/drain/pkg/apiclient"
)

// widgetAPI is a HAL origin: a root, a paginated /widgets collection (3 items a page, 3 pages,
// filterable by color) and /widgets/{id}. Index item requests wait at a barrier until a whole page's
// items have arrived (or 2 s pass), so the test can see whether they run in parallel.
type widgetAPI struct {
	*origin
	rootFails atomic.Int32 // answer 500 to this many root requests first

	mu          sync.Mutex
	inflight    int
	arrivals    int
	maxInflight int
	arrived     *sync.Cond
}

func newWidgetAPI(t *testing.T) *widgetAPI {
	api := &widgetAPI{}
	api.arrived = sync.NewCond(&api.mu)
	api.origin = newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/hal+json")
		switch {
		case r.URL.Path == "/":
			if api.rootFails.Add(-1) >= 0 {
				w.WriteHeader(500)
				return
			}
			fmt.Fprint(w, `{"_links":{"self":{"href":"/"},
				"widgets":{"href":"/widgets{?page,per_page}","templated":true},
				"widget":{"href":"/widgets/{id}","templated":true}},"name":"widget API"}`)
		case r.URL.Path == "/widgets" && r.Method == http.MethodGet:
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			if page == 0 {
				page = 1
			}
			color := r.URL.Query().Get("color")
			var items []string
			for i := 1; i <= 3; i++ {
				items = append(items, fmt.Sprintf(`{"href":"/widgets/%d?color=%s"}`, (page-1)*3+i, color))
			}
			next := ""
			if page < 3 {
				// The next link omits the color filter on purpose: the client must keep it.
				next = fmt.Sprintf(`,"next":{"href":"/widgets?page=%d&per_page=3"}`, page+1)
			}
			fmt.Fprintf(w, `{"_links":{"self":{"href":"/widgets?page=%d"},"curies":[{"name":"x","href":"/rels/{rel}"}],"widgets":[%s]%s}}`,
				page, strings.Join(items, ","), next)
		case strings.HasPrefix(r.URL.Path, "/widgets/") && r.Method == http.MethodGet:
			api.mu.Lock()
			api.inflight++
			api.maxInflight = max(api.maxInflight, api.inflight)
			api.arrived.Broadcast()
			if r.URL.Query().Has("color") { // an index item: wait for the rest of its page
				api.arrivals++
				release := (api.arrivals + 2) / 3 * 3
				timer := time.AfterFunc(2*time.Second, api.arrived.Broadcast)
				for deadline := time.Now().Add(2 * time.Second); api.arrivals < release && time.Now().Before(deadline); {
					api.arrived.Wait()
				}
				timer.Stop()
			}
			api.mu.Unlock()
			id := strings.TrimPrefix(r.URL.Path, "/widgets/")
			fmt.Fprintf(w, `{"id":%s,"color":%q,"_links":{"self":{"href":"/widgets/%s"}}}`, id, r.URL.Query().Get("color"), id)
			api.mu.Lock()
			api.inflight--
			api.mu.Unlock()
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	return api
}

func (api *widgetAPI) count(path string) int {
	n := 0
	for _, r := range api.requests() {
		if r.Path == path {
			n++
		}
	}
	return n
}

func TestDiscoverMemoAndTTL(t *testing.T) {
	api := newWidgetAPI(t)
	ctx := context.Background()
	api.rootFails.Store(1)
	c := newClient(t, apiclient.Options{DiscoverTTL: 200 * time.Millisecond})

	if _, err := c.Discover(ctx, api.URL+"/"); !errors.Is(err, apiclient.ErrServerError) {
		t.Fatalf("first discover: %v", err)
	}
	// The error was not remembered; the success is.
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if doc, err := c.Discover(ctx, api.URL+"/"); err != nil || !doc.Has("widgets") {
				t.Errorf("discover: %v", err)
			}
		}()
	}
	wg.Wait()
	if _, err := c.Discover(ctx, api.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if n := api.count("/"); n != 2 {
		t.Fatalf("root fetched %d times, want 2 (one failure, one remembered success)", n)
	}
	// Another client has its own memo.
	other := newClient(t, apiclient.Options{})
	if _, err := other.Discover(ctx, api.URL+"/"); err != nil || api.count("/") != 3 {
		t.Fatalf("second client: %v, %d fetches", err, api.count("/"))
	}
	// Past the TTL the root is fetched again.
	waitFor(t, "the memo to expire", func() bool {
		if _, err := c.Discover(ctx, api.URL+"/"); err != nil {
			t.Fatal(err)
		}
		return api.count("/") == 4
	})
}

func TestLinksAndVerbs(t *testing.T) {
	api := newWidgetAPI(t)
	ctx := context.Background()
	c := newClient(t, apiclient.Options{})
	root, err := c.Discover(ctx, api.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(root.LinkNames(), ","); got != "self,widgets,widget" {
		t.Errorf("LinkNames = %s", got)
	}
	if body, err := root.BodyWithoutLinks(); err != nil || string(body["name"]) != `"widget API"` || body["_links"] != nil {
		t.Errorf("BodyWithoutLinks = %v, %v", body, err)
	}
	if _, err := root.Link("gadgets"); !errors.Is(err, apiclient.ErrNoLink) {
		t.Errorf("unknown link: %v", err)
	}
	widget, err := root.Link("widget")
	if err != nil || widget.URL() != "/widgets/{id}" {
		t.Fatalf("Link(widget) = %v, %v", widget, err)
	}

	shown, err := widget.Show(ctx, "7", apiclient.RequestOptions{Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	var w struct{ ID int }
	if err := shown.JSON(&w); err != nil || w.ID != 7 || !shown.Has("self") {
		t.Errorf("Show(7) = %s, %v", shown.Body, err)
	}
	if h := api.last(t).Header.Get("Accept"); h != "application/json;v=2" {
		t.Errorf("Accept %q", h)
	}

	widgets, _ := root.Link("widgets")
	if _, err := widgets.Create(ctx, map[string]string{"color": "red"}); err != nil {
		t.Fatal(err)
	}
	if s := api.last(t); s.Method != "POST" || s.Path != "/widgets" || s.Query != "" || s.Body != `{"color":"red"}` {
		t.Errorf("Create sent %+v", s)
	}
	if _, err := widget.Update(ctx, "7", map[string]string{"color": "blue"}); err != nil {
		t.Fatal(err)
	}
	if s := api.last(t); s.Method != "PATCH" || s.Path != "/widgets/7" || s.Body != `{"color":"blue"}` {
		t.Errorf("Update sent %+v", s)
	}
	if resp, err := widget.Destroy(ctx, "7"); err != nil || resp.Status != 204 {
		t.Fatal(err)
	}
	if s := api.last(t); s.Method != "DELETE" || s.Path != "/widgets/7" {
		t.Errorf("Destroy sent %+v", s)
	}

	page, err := widgets.Show(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := page.Link("widgets"); !errors.Is(err, apiclient.ErrNoLink) {
		t.Errorf("Link of a collection: %v", err)
	}
	if hrefs, err := page.Hrefs("widgets"); err != nil || len(hrefs) != 3 {
		t.Errorf("Hrefs = %v, %v", hrefs, err)
	}
}

func TestIndexPaginates(t *testing.T) {
	api := newWidgetAPI(t)
	ctx := context.Background()
	c := newClient(t, apiclient.Options{})
	root, err := c.Discover(ctx, api.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	widgets, _ := root.Link("widgets")

	var ids []int
	for resp, err := range widgets.Index(ctx, url.Values{"per_page": {"3"}, "color": {"red"}}, apiclient.RequestOptions{Locale: "en-GB"}) {
		if err != nil {
			t.Fatal(err)
		}
		var w struct {
			ID    int
			Color string
		}
		if err := json.Unmarshal(resp.Body, &w); err != nil {
			t.Fatal(err)
		}
		if w.Color != "red" {
			t.Errorf("widget %d color %q", w.ID, w.Color)
		}
		ids = append(ids, w.ID)
	}
	if fmt.Sprint(ids) != "[1 2 3 4 5 6 7 8 9]" {
		t.Errorf("ids %v", ids)
	}
	var pages []string
	for _, r := range api.requests() {
		if r.Path == "/widgets" {
			pages = append(pages, r.Query)
			if r.Header.Get("Accept-Language") != "en-GB" {
				t.Errorf("page request without the locale")
			}
		}
	}
	want := []string{"color=red&per_page=3", "color=red&page=2&per_page=3", "color=red&page=3&per_page=3"}
	if fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Errorf("page queries %q, want %q", pages, want)
	}
	api.mu.Lock()
	maxInflight := api.maxInflight
	api.mu.Unlock()
	if maxInflight != 3 {
		t.Errorf("at most %d item requests in flight, want a page's 3 in parallel", maxInflight)
	}

	// Breaking early fetches no further page.
	before := api.count("/widgets")
	for _, err := range widgets.Index(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if n := api.count("/widgets") - before; n != 1 {
		t.Errorf("one item cost %d page requests", n)
	}
}

func TestIndexErrors(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/list":
			fmt.Fprint(w, `{"_links":{"items":[{"href":"/ok"},{"href":"/missing"},{"href":"/ok"}],"next":{"href":"/broken"}}}`)
		case "/ok":
			fmt.Fprint(w, `{}`)
		case "/broken":
			fmt.Fprint(w, `not json`)
		default:
			w.WriteHeader(404)
		}
	})
	c := newClient(t, apiclient.Options{})
	var got []string
	for resp, err := range c.Resource(o.URL+"/list").Index(context.Background(), nil) {
		switch {
		case errors.Is(err, apiclient.ErrNotFound):
			got = append(got, "404")
		case err != nil:
			got = append(got, "page error")
		default:
			got = append(got, strconv.Itoa(resp.Status))
		}
	}
	if fmt.Sprint(got) != "[200 404 200 page error]" {
		t.Errorf("yielded %v", got)
	}
}
