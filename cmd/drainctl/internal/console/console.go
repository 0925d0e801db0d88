// Package console is drainctl's web console: server-rendered pages over the same status as
// `drainctl status` (package status), the dead letters (browse, inspect, replay, purge), a URL
// inspector and the services' circuit breakers. Every page works without JavaScript; a small
// embedded script refreshes the pipeline page every 2 s from /api/status.
//
// Access: when a token is configured every request must carry it (Authorization: Bearer
// <token>, or Basic auth with the token as password), compared in constant time; otherwise
// the server answers 401 with a WWW-Authenticate challenge. A state-changing request (replay,
// purge) must also be a same-origin POST carrying the process's CSRF token in a hidden field.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routemaster-drain/drain/cmd/drainctl/internal/status"
	"github.com/routemaster-drain/drain/pkg/cache"
	"github.com/routemaster-drain/drain/pkg/stream"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// requestTimeout bounds the work of one request (NATS, Redis and admin reads).
const requestTimeout = 10 * time.Second

// maxForm bounds the body of a POST.
const maxForm = 64 << 10

// Config is what a Console serves.
type Config struct {
	Sources    status.Sources        // NATS, names, dirty map, admin URLs: what status.Gather reads
	DrainRedis redis.UniversalClient // ROUTEMASTER_DRAIN_REDIS: the filter's state
	Namespace  string                // its namespace
	Cache      *cache.Cache          // ROUTEMASTER_CACHE_REDIS: read only (no Fetcher needed)
	// Token, when not empty, is what every request must carry. Never logged.
	Token string
	Log   *slog.Logger
}

// Console is the web console's http.Handler. It keeps one status sample for the pipeline's
// rates, shared by every viewer; it is safe for concurrent use.
type Console struct {
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template
	csrf  string
	token [sha256.Size]byte
	rates status.Rates
}

// New returns a console serving cfg. It generates the process's CSRF token.
func New(cfg Config) (*Console, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("console: CSRF token: %w", err)
	}
	c := &Console{cfg: cfg, csrf: hex.EncodeToString(b[:]), token: sha256.Sum256([]byte(cfg.Token))}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.mux = http.NewServeMux()
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /{$}", c.pipeline)
	c.mux.HandleFunc("GET /api/status", c.apiStatus)
	c.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	c.mux.HandleFunc("GET /dead-letters", c.deadLetters)
	c.mux.HandleFunc("GET /dead-letters/{seq}", c.deadLetter)
	c.mux.HandleFunc("POST /dead-letters/replay", c.replay)
	c.mux.HandleFunc("POST /dead-letters/purge", c.purge)
	c.mux.HandleFunc("GET /url", c.inspect)
	c.mux.HandleFunc("GET /breakers", c.breakers)
	return c, nil
}

// ServeHTTP checks the token, sets the security headers and serves the page.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if c.cfg.Token != "" && !c.authorized(r) {
		h.Add("WWW-Authenticate", `Basic realm="drain console", charset="UTF-8"`)
		h.Add("WWW-Authenticate", `Bearer realm="drain console"`)
		http.Error(w, "401 unauthorized: send DRAIN_CONSOLE_TOKEN as a Bearer token or as the Basic-auth password", http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	c.mux.ServeHTTP(w, r.WithContext(ctx))
}

// authorized reports whether r carries the token: Bearer <token>, or Basic auth with the token
// as password (any user name). Both sides are hashed first, so the comparison takes the same
// time whatever the length of what was sent.
func (c *Console) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	var got string
	switch strings.ToLower(scheme) {
	case "bearer":
		got = strings.TrimSpace(cred)
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return false
		}
		_, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return false
		}
		got = pass
	default:
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], c.token[:]) == 1
}

// errCSRF is the answer to a state-changing request that is not a same-origin form POST of
// this process.
var errCSRF = errors.New("refused: not a same-origin form of this console (reload the page and try again)")

// checkForm parses a POST's form and checks that it comes from this console's own page: the
// Origin (when the browser sends one) is this host, Sec-Fetch-Site (when sent) is
// same-origin, and the csrf field holds the process's token.
func (c *Console) checkForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("bad form: %w", err)
	}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
		return errCSRF
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return errCSRF
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(c.csrf)) != 1 {
		return errCSRF
	}
	return nil
}

// openDLQ opens the deployment's dead letters.
func (c *Console) openDLQ(ctx context.Context) (*stream.DeadLetters, error) {
	return stream.OpenDeadLetters(ctx, c.cfg.Sources.JS, c.cfg.Sources.Names)
}
