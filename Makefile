# routemaster-drain for Go. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
MODULES := $(sort $(dir $(wildcard pkg/go.mod pkg/*/go.mod internal/go.mod services/*/go.mod cmd/*/go.mod e2e/go.mod)))
BINARIES := ingest filter warmer sweeper
TEST_FLAGS ?= -count=1 -timeout 30m

.PHONY: help build test lint fuzz bench run up down chaos clean tidy

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/ingest, bin/filter, bin/warmer, bin/sweeper, bin/drainctl
	@mkdir -p bin
	@for b in $(BINARIES); do if [ -d services/$$b ]; then (cd services/$$b && CGO_ENABLED=0 $(GO) build -trimpath -o ../../bin/$$b .) || exit 1; fi; done
	@if [ -d cmd/drainctl ]; then (cd cmd/drainctl && CGO_ENABLED=0 $(GO) build -trimpath -o ../../bin/drainctl .) || exit 1; fi
	@ls bin

test: ## run every module's tests against private NATS and Redis servers
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test $(TEST_FLAGS) ./...); done

lint: ## gofmt, go vet and staticcheck on every module
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...); done

fuzz: ## run the batch parser's fuzz target for 60 s
	cd pkg/event && $(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s .

tidy: ## go mod tidy every module (go.work wires the workspace; no replace directives)
	bash scripts/tidy.sh

clean: ## remove build output
	rm -rf bin

# .env at the repository root (copy .env.example) holds the compose settings when it exists.
COMPOSE ?= docker compose -f deploy/compose.yaml $(if $(wildcard .env),--env-file .env)

up: ## run the stack under docker compose (ingest needs ROUTEMASTER_DRAIN_TOKENS, exported or in .env; PROFILE=observability adds Prometheus and Grafana; ARGS="--scale warmer=4")
	@test -n "$$ROUTEMASTER_DRAIN_TOKENS" || grep -qs '^ROUTEMASTER_DRAIN_TOKENS=..*' .env || { echo "set ROUTEMASTER_DRAIN_TOKENS=<token the bus posts with> in .env (cp .env.example .env) or export it first"; exit 2; }
	$(COMPOSE) $(if $(PROFILE),--profile $(PROFILE)) up --build --detach --wait $(ARGS)

down: ## stop the docker compose stack, every profile (volumes are kept; add -v by hand to drop them)
	$(COMPOSE) --profile observability --profile tools down

run: ## run the whole pipeline locally without Docker: NATS, Redis, the four services and a demo origin
	cd e2e && $(GO) run ./devstack

chaos: ## kill services, NATS and Redis under a simulated bus (50,000 events, at most 10 minutes; CLUSTER=1: on a NATS cluster and a Redis Cluster, killing nodes)
	@$(MAKE) --no-print-directory build
	cd e2e && $(GO) run ./cmd/chaos -bin ../bin -events 50000 -urls 2000 -kill-every 700ms -timeout 10m $(if $(CLUSTER),-cluster)

bench: ## run every e2e/bench/<stage> program; write the table and docs/benchmarks-notes.md to docs/benchmarks.md
	@mkdir -p docs tmp
	@{ echo "# Benchmarks"; echo; \
	  echo "Measured $$(date -u +%Y-%m-%d) on $$(nproc) cores ($$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $$(free -g | awk '/Mem:/{print $$2}') GiB), $$($(GO) version | cut -d' ' -f3)."; \
	  echo "Command: \`make bench\` (each \`cd e2e && go run ./bench/<stage>\`). Each row sits beside a reference measured in the same run."; echo; \
	  echo "| stage | case | result | reference | ratio |"; echo "|---|---|---|---|---|"; } > tmp/benchmarks.md
	@set -e; for s in ingest filter warm e2e; do \
	  if [ -d e2e/bench/$$s ]; then echo "== bench $$s" >&2; (cd e2e && $(GO) run ./bench/$$s) | grep '^|' >> tmp/benchmarks.md; \
	  else echo "== bench $$s: e2e/bench/$$s does not exist yet, skipped" >&2; fi; done
	@{ echo; cat docs/benchmarks-notes.md; } >> tmp/benchmarks.md
	@mv tmp/benchmarks.md docs/benchmarks.md && cat docs/benchmarks.md
