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
lint: ## gofmt, go vet and actionlint (the GitHub workflows) must be clean.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/...
	$(GO) vet -tags realnode ./test/realnode/
	$(GO) vet -tags promtool ./monitoring/
	hack/tools.sh checks
	$(TOOLS)/actionlint

.PHONY: unit
unit: ## Unit tests under Pulumi mocks, config validation, invariants.
	$(GO) test ./...

.PHONY: score
score: render ## kube-score on every render: no CRITICAL (ignores are per object, with a reason, in code).
	hack/tools.sh checks
	$(TOOLS)/kube-score score out/*/manifests.yaml --output-format ci | { grep -E 'CRITICAL' && exit 1 || true; }
	@echo "kube-score: no CRITICAL in" out/*/manifests.yaml

.PHONY: e2e
e2e: ## Apply every stack's render (dev, prod, quickstart) to a real local control plane and check they converge.
	hack/tools.sh control-plane
	$(GO) test -tags e2e -count=1 -timeout 20m ./test/e2e/

.PHONY: realnode
realnode: ## Real kubelets run a stack's pods: restricted, probes, weights, no request lost, NetworkPolicies (SKIPPED without root and containerd).
	hack/tools.sh control-plane
	hack/tools.sh real-nodes
	@if ! missing=$$(hack/realnode.sh check); then \
	  echo "realnode: SKIPPED, this machine cannot run real nodes; missing: $$(echo $$missing | tr '\n' ' ')"; exit 0; fi; \
	$(GO) test -tags realnode -count=1 -timeout 30m -v ./test/realnode/

.PHONY: e2e-pulumi
e2e-pulumi: ## The real Pulumi engine on the local control plane: preview, up, drift, outputs, destroy (skipped without the engine).
	@if ! hack/pulumi.sh engine; then echo "e2e-pulumi: SKIPPED, no Pulumi engine found; see CONTRIBUTING.md"; exit 0; fi; \
	hack/tools.sh control-plane && $(GO) test -tags e2e -count=1 -timeout 40m -v ./test/e2epulumi/

.PHONY: alerts
alerts: ## promtool checks prod's alert rules and runs their unit tests (monitoring/testdata/alerts_test.yaml).
	hack/tools.sh checks
	$(GO) test -tags promtool -count=1 ./monitoring/

.PHONY: test
test: lint unit render score alerts e2e realnode e2e-pulumi ## Every test: lint, unit tests, renders, kube-score, alert rules, end-to-end on the local control plane, real nodes, the Pulumi engine tier.

.PHONY: bench
bench: ## Render and convergence benchmarks; prints a table and writes BENCHMARKS.md.
	hack/tools.sh control-plane
	$(GO) run ./cmd/bench

##@ Deliver with Pulumi (needs the Pulumi CLI)

# Extra flags for pulumi, e.g. PULUMI_FLAGS="--yes" in CI, "--expect-no-changes".
PULUMI_FLAGS ?=

.PHONY: preview
preview: build ## pulumi preview --diff of STACK, on the prebuilt program.
	hack/pulumi.sh preview $(STACK) $(PULUMI_FLAGS)

.PHONY: deploy
deploy: build ## pulumi up of STACK, on the prebuilt program.
	hack/pulumi.sh deploy $(STACK) $(PULUMI_FLAGS)

.PHONY: up-pulumi
up-pulumi: build ## Like `make up`, but through `pulumi up` with a local file backend in build/.
	hack/cluster.sh up
	$(GO) run ./cmd/localcluster -stack $(STACK) -nodes-only
	hack/pulumi.sh local-up $(STACK) $(PULUMI_FLAGS)

##@ Render and local control plane

STACKS := $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml))

.PHONY: render
render: ## Render STACK (default: every stack) to out/<stack>/manifests.yaml, offline.
	@for s in $(if $(filter command line,$(origin STACK)),$(STACK),$(STACKS)); do $(GO) run ./cmd/render -stack $$s || exit 1; done

.PHONY: up
up: ## Build tools if missing, start the local cluster, deploy the dev stack, show it converged.
	hack/cluster.sh up
	$(GO) run ./cmd/localcluster -stack $(STACK)
	@if hack/pulumi.sh engine >/dev/null 2>&1; then echo "The Pulumi engine is here: 'make up-pulumi' deploys the same stack onto this cluster through pulumi up."; fi

.PHONY: down
down: ## Delete the local cluster.
	hack/cluster.sh down

.PHONY: tools
tools: ## Build the control-plane binaries and checkers into build/bin (cold: 25-30 min on 2 cores; see CONTRIBUTING.md).
	hack/tools.sh all
