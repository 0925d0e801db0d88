// Command warmer keeps the Redis cache warm: it consumes the warm requests the filter
// publishes on <prefix>.warm and fetches each resource into the cache (docs/warmer.md).
package main

import (
	"github.com/routemaster-drain/drain/internal/service"
	"github.com/routemaster-drain/drain/pkg/config"
	"github.com/routemaster-drain/drain/services/warmer/internal/warming"
)

func main() {
	service.Main(config.Warmer, warming.Summary, warming.Main)
}
