package receiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/routemaster-drain/drain/pkg/stream"
)

// Limits of the HTTP server against slow or hostile clients. The bus gives up on a delivery
// after 20 s (ROUTEMASTER_TIMEOUT), so a request never needs longer than that.
const (
	// ReadHeaderTimeout bounds the time to read a request's headers.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds the time to read a whole request, body included.
	ReadTimeout = 15 * time.Second
	// IdleTimeout closes keep-alive connections idle for longer.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes bounds the size of a request's headers.
	MaxHeaderBytes = 16 << 10
)

// HTTPServer returns the http.Server that Serve runs: s as handler, the limits above, and a
// WriteTimeout of ReadTimeout + DRAIN_INGEST_PUBLISH_TIMEOUT + 5 s, so a handler that waits
// for JetStream always gets to write its 503.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      ReadTimeout + s.cfg.PublishTimeout + 5*time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Serve serves HTTP (HTTPS when DRAIN_INGEST_TLS_CERT and _KEY are set) on ln until ctx is
// cancelled, then shuts down gracefully: /readyz turns 503, the listener closes, and requests
// in flight finish (their batches are published and answered) within DRAIN_SHUTDOWN_TIMEOUT.
// It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := s.HTTPServer()
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("DRAIN_INGEST_TLS_CERT/DRAIN_INGEST_TLS_KEY: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	tlsOn := hs.TLSConfig != nil // read before Serve, which writes hs.TLSConfig (HTTP/2 set-up)
	go func() {
		if tlsOn {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	s.log.Info("ingest listening", "addr", ln.Addr().String(), "path", s.path, "tls", tlsOn)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.stopping.Store(true)
	s.log.Info("shutting down: finishing in-flight requests", "inflight", s.inflight.Load())
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// DeclareStreams declares the drain's streams with stream.DeclareUntil (retrying with backoff
// until NATS answers or ctx is cancelled), so ingest starts and answers 503 while NATS is away
// instead of crash-looping. It returns nil once the streams are declared, ctx.Err() otherwise.
func (s *Server) DeclareStreams(ctx context.Context) error {
	return stream.DeclareUntil(ctx, s.js, s.streams, s.log)
}
