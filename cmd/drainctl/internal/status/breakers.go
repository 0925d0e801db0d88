package status

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/routemaster-drain/drain/pkg/apiclient"
	"github.com/routemaster-drain/drain/pkg/config"
)

// BreakerMetric is the gauge the API client exports per origin host.
const BreakerMetric = "drain_apiclient_breaker_state"

// MaxMetrics bounds the /metrics answer Breakers reads from one service.
const MaxMetrics = 8 << 20

// HostBreaker is the circuit breaker state of one origin host in one service.
type HostBreaker struct {
	Host  string `json:"host"`
	State string `json:"state"` // closed, half-open or open
	Value int    `json:"value"` // the gauge: 0 closed, 1 half-open, 2 open
}

// ServiceBreakers is what one service's /metrics says about its circuit breakers.
type ServiceBreakers struct {
	Service string        `json:"service"`
	URL     string        `json:"url"`
	Hosts   []HostBreaker `json:"hosts"`           // by host; empty for a service without breakers
	Error   string        `json:"error,omitempty"` // why /metrics could not be read
}

// Breakers reads drain_apiclient_breaker_state from every admin address's /metrics, in
// parallel (one request each, at most MaxMetrics bytes read). A service that does not answer
// or whose metrics do not parse is reported with its Error. A host appears once a request
// to it went through the breaker; services without an API client (ingest, filter, sweeper)
// list no host.
func Breakers(ctx context.Context, src Sources) []ServiceBreakers {
	out := make([]ServiceBreakers, len(src.Admins))
	var wg sync.WaitGroup
	for i, a := range src.Admins {
		wg.Go(func() { out[i] = breakersOf(ctx, src.client(), a) })
	}
	wg.Wait()
	return out
}

func breakersOf(ctx context.Context, client *http.Client, a config.AdminURL) ServiceBreakers {
	sb := ServiceBreakers{Service: a.Name, URL: a.URL, Hosts: []HostBreaker{}}
	code, body, err := get(ctx, client, a.URL+"/metrics", MaxMetrics)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET %s/metrics: status %d", a.URL, code)
	}
	if err != nil {
		sb.Error = err.Error()
		return sb
	}
	hosts, err := ParseBreakers(body)
	if err != nil {
		sb.Error = fmt.Sprintf("%s/metrics: %v", a.URL, err)
		return sb
	}
	sb.Hosts = hosts
	return sb
}

// ParseBreakers returns the drain_apiclient_breaker_state series of a Prometheus text
// exposition, by host.
func ParseBreakers(text []byte) ([]HostBreaker, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, err
	}
	hosts := []HostBreaker{}
	fam := families[BreakerMetric]
	if fam == nil {
		return hosts, nil
	}
	for _, m := range fam.GetMetric() {
		host := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "host" {
				host = l.GetValue()
			}
		}
		v := int(m.GetGauge().GetValue())
		hosts = append(hosts, HostBreaker{Host: host, Value: v, State: StateName(v)})
	}
	slices.SortFunc(hosts, func(a, b HostBreaker) int { return strings.Compare(a.Host, b.Host) })
	return hosts, nil
}

// StateName names a breaker gauge value.
func StateName(v int) string {
	switch v {
	case apiclient.StateClosed:
		return "closed"
	case apiclient.StateHalfOpen:
		return "half-open"
	case apiclient.StateOpen:
		return "open"
	}
	return fmt.Sprintf("unknown (%d)", v)
}
