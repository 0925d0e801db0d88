# routemaster-drain for Go. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
MODULES := $(sort $(dir $(wildcard pkg/go.mod pkg/*/go.mod services/*/go.mod cmd/*/go.mod e2e/go.mod)))
BINARIES := ingest filter warmer sweeper
TEST_FLAGS ?= -count=1 -timeout 30m

.PHONY: help build test lint fuzz bench run up down chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/ingest, bin/filter, bin/warmer, bin/sweeper, bin/drainctl
	@mkdir -p bin
	@for b in $(BINARIES); do [ -d services/$$b ] && (cd services/$$b && CGO_ENABLED=0 $(GO) build -trimpath -o ../../bin/$$b .) || true; done
	@[ -d cmd/drainctl ] && (cd cmd/drainctl && CGO_ENABLED=0 $(GO) build -trimpath -o ../../bin/drainctl .) || true
	@ls bin

test: ## run every module's tests against private NATS and Redis servers
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test $(TEST_FLAGS) ./...); done

lint: ## gofmt, go vet and staticcheck on every module
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...); done

fuzz: ## run the batch parser's fuzz target for 60 s
	cd pkg/event && $(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s .

clean: ## remove build output
	rm -rf bin
