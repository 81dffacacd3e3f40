# llm-platform: every command a user or CI needs. `make help` lists them.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

STACK ?= dev
GO ?= go
TOOLS := build/bin

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Develop

.PHONY: build
build: ## Build the Pulumi program into bin/llm-platform.
	$(GO) build -o bin/llm-platform .

.PHONY: fmt
fmt: ## Format the Go code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: lint
lint: ## gofmt and go vet must be clean.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: unit
unit: ## Unit tests under Pulumi mocks, config validation, invariants.
	$(GO) test ./...

.PHONY: test
test: lint unit ## Every test: lint, unit tests.

##@ Local control plane

.PHONY: tools
tools: ## Build the control-plane binaries and checkers into build/bin (cold: ~15 min).
	hack/tools.sh all
