package console

import (
	"net/http"

	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/dirty"
	"github.com/routemaster-drain/drain/pkg/reorder"
)

// maxURL bounds the URL the inspector looks up.
const maxURL = 8 << 10

// urlReport is what the drain knows about one URL. Each part is read on its own, so one
// failing (an unreadable state, the cache Redis down) still shows the others.
type urlReport struct {
	URL      string
	State    reorder.State
	StateErr string
	Dirty    dirty.URLStatus
	DirtyErr string
	Cache    cache.Stored
	CacheErr string
}

// inspect shows the filter's state, the dirty map's view and the cached variants of ?url=.
// The warmer does not record per-URL outcomes, so the page says so instead of showing one.
func (c *Console) inspect(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "URL inspector", Nav: "url"}
	u := r.URL.Query().Get("url")
	if u == "" {
		p.Data = &urlReport{}
		c.render(w, http.StatusOK, "url", p)
		return
	}
	rep := &urlReport{URL: u}
	p.Data = rep
	if len(u) > maxURL {
		p.Error = "The URL is longer than 8 KiB."
		rep.URL = ""
		c.render(w, http.StatusBadRequest, "url", p)
		return
	}
	ctx := r.Context()
	var err error
	if rep.State, err = reorder.ReadState(ctx, c.cfg.DrainRedis, c.cfg.Namespace, u); err != nil {
		rep.StateErr = err.Error()
	}
	if rep.Dirty, err = c.cfg.Sources.Dirty.Status(ctx, u); err != nil {
		rep.DirtyErr = err.Error()
	}
	if rep.Cache, err = c.cfg.Cache.Variants(ctx, u); err != nil {
		rep.CacheErr = err.Error()
	}
	c.render(w, http.StatusOK, "url", p)
}
