#!/usr/bin/env bash
# go mod tidy for every module of the workspace without replace directives: each module is
# tidied with GOWORK=off and temporary replaces pointing at the checkout, then the temporary
# lines are dropped (go.work wires the workspace). Modules under e2e/ and examples/ keep theirs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=github.com/routemaster-drain/drain
mods=(pkg pkg/containers internal services/ingest services/filter services/warmer services/sweeper cmd/drainctl e2e)
for m in "${mods[@]}"; do
  [ -f "$root/$m/go.mod" ] || continue
  (
    cd "$root/$m"
    rel=$(realpath --relative-to=. "$root")
    # drop every replace of a workspace module, then point each one at the checkout
    go mod edit $(for o in "${mods[@]}"; do echo "-dropreplace=$base/$o"; done) -dropreplace=$base -dropreplace=$base/draintest
    go mod edit $(for o in "${mods[@]}"; do [ "$o" = "$m" ] || echo "-replace=$base/$o=$rel/$o"; done)
    GOWORK=off GOFLAGS=-mod=mod go mod tidy
    case "$m" in
      e2e|examples/*) ;;
      *) go mod edit $(for o in "${mods[@]}"; do echo "-dropreplace=$base/$o"; done) ;;
    esac
  )
done
