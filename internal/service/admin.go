package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Need is one thing a service must reach before it is ready, as /readyz names it.
type Need struct {
	// Name is how /readyz lists the need while it is missing: "nats", "streams", "redis",
	// "cache_redis".
	Name string
	// Check reports nil when the need is met. It must return promptly once ctx is done
	// (/readyz gives every check 2 s).
	Check func(ctx context.Context) error
}

// checkTimeout bounds the checks of one /readyz request or one wait for readiness.
const checkTimeout = 2 * time.Second

// missing runs every check at once and returns the names of the needs that failed, in the
// order given, with each one's error.
func missing(ctx context.Context, needs []Need) ([]string, map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	errs := make([]error, len(needs))
	var wg sync.WaitGroup
	for i, n := range needs {
		wg.Go(func() { errs[i] = n.Check(ctx) })
	}
	wg.Wait()
	var names []string
	var reasons map[string]string
	for i, err := range errs {
		if err == nil {
			continue
		}
		if reasons == nil {
			reasons = map[string]string{}
		}
		names = append(names, needs[i].Name)
		reasons[needs[i].Name] = err.Error()
	}
	return names, reasons
}

// readiness is the body of /readyz: status is "ready" (200), or "starting", "not ready" or
// "stopping" (503); missing and errors are set with "not ready".
type readiness struct {
	Status  string            `json:"status"`
	Missing []string          `json:"missing,omitempty"`
	Errors  map[string]string `json:"errors,omitempty"`
}

// admin is a service's admin HTTP server: /healthz, /readyz, /metrics and the routes a
// service adds.
type admin struct {
	srv      *http.Server
	mux      *http.ServeMux
	addr     string
	needs    atomic.Pointer[[]Need] // nil until the service names them (Lifecycle.Run)
	running  atomic.Bool            // the service's work has started
	stopping atomic.Bool
}

// startAdmin listens on addr and serves until shutdown. It returns once the listener is open,
// so a bad or taken address fails start-up. With withPprof (DRAIN_PPROF) it also serves the Go
// profiler under /debug/pprof/.
func startAdmin(addr string, reg *prometheus.Registry, withPprof bool, log *slog.Logger) (*admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("DRAIN_ADMIN_ADDR: listen %s: %w", addr, err)
	}
	a := &admin{mux: http.NewServeMux(), addr: ln.Addr().String()}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if withPprof {
		// The handlers net/http/pprof registers on http.DefaultServeMux, here on the admin mux
		// only: the default mux is never served.
		a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		a.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		a.mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	a.srv = &http.Server{Handler: a.mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server failed", "err", err)
		}
	}()
	log.Info("admin listening", "addr", a.addr)
	return a, nil
}

func (a *admin) readyz(w http.ResponseWriter, r *http.Request) {
	state := a.readiness(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if state.Status != "ready" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(state)
}

func (a *admin) readiness(ctx context.Context) readiness {
	if a.stopping.Load() {
		return readiness{Status: "stopping"}
	}
	needs := a.needs.Load()
	if needs == nil {
		return readiness{Status: "starting"}
	}
	if names, reasons := missing(ctx, *needs); len(names) > 0 {
		return readiness{Status: "not ready", Missing: names, Errors: reasons}
	}
	if !a.running.Load() {
		return readiness{Status: "starting"}
	}
	return readiness{Status: "ready"}
}

// whenRunning serves h once the service's work has started and 503 before.
func (a *admin) whenRunning(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.running.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"not ready"}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (a *admin) shutdown() {
	a.stopping.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}
