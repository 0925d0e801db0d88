package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"time"
)

// page is what every template gets.
type page struct {
	Title string
	Nav   string // the active navigation entry: pipeline, dead-letters, url, breakers
	CSRF  string
	Error string // shown in an alert box when not empty
	Data  any
}

var funcs = template.FuncMap{
	// rate formats a rate with one decimal, or – when there is none yet.
	"rate": func(r *float64) string {
		if r == nil {
			return "–"
		}
		return strconv.FormatFloat(*r, 'f', 1, 64)
	},
	// when formats a time in UTC to the second, "–" when zero.
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	// age is how long ago t was, rounded to the second.
	"age": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return time.Since(t).Round(time.Second).String()
	},
	// dur is a duration rounded to the second.
	"dur": func(d time.Duration) string { return d.Round(time.Second).String() },
	"millis": func(ms int64) time.Time {
		if ms <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms)
	},
}

// parsePages parses each page template of templates/ with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", base, err)
		}
		pages[base[:len(base)-len(".html")]] = t
	}
	return pages, nil
}

// render writes page name with p at status code. The page is rendered into a buffer first,
// so a template error is a clean 500.
func (c *Console) render(w http.ResponseWriter, code int, name string, p page) {
	p.CSRF = c.csrf
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		c.cfg.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, "500 internal error: cannot render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
