package console

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/routemaster-drain/drain/cmd/drainctl/internal/status"
)

// gather is status.Gather with the console's rates applied.
func (c *Console) gather(ctx context.Context) (*status.Status, error) {
	st, err := status.Gather(ctx, c.cfg.Sources)
	if err != nil {
		return nil, err
	}
	c.rates.Apply(st)
	return st, nil
}

// pipeline is the home page: streams, stages, dead letters, the dirty map, services.
func (c *Console) pipeline(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Pipeline", Nav: "pipeline"}
	st, err := c.gather(r.Context())
	if err != nil {
		p.Error = "Cannot read the deployment's state: " + err.Error()
		c.render(w, http.StatusServiceUnavailable, "pipeline", p)
		return
	}
	p.Data = st
	c.render(w, http.StatusOK, "pipeline", p)
}

// apiStatus serves the Status as `drainctl status --json` prints it, with the rates; 503 with
// {"error": "..."} when it cannot be read.
func (c *Console) apiStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	st, err := c.gather(r.Context())
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = enc.Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = enc.Encode(st)
}
