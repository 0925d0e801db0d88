package console

import (
	"net/http"

	"github.com/routemaster-drain/drain/cmd/drainctl/internal/status"
)

type breakerPage struct {
	Configured bool
	Services   []status.ServiceBreakers
}

// breakers shows the circuit breaker state per origin host of every service listed in
// DRAIN_STATUS_ADMIN_URLS, read from their /metrics.
func (c *Console) breakers(w http.ResponseWriter, r *http.Request) {
	bp := &breakerPage{Configured: len(c.cfg.Sources.Admins) > 0}
	if bp.Configured {
		bp.Services = status.Breakers(r.Context(), c.cfg.Sources)
	}
	c.render(w, http.StatusOK, "breakers", page{Title: "Circuit breakers", Nav: "breakers", Data: bp})
}
