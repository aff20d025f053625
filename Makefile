# Shoal: run `make help` for the targets.

GO          ?= go
BIN         := bin
SHOAL       := $(BIN)/shoal
VERSITYGW   := $(BIN)/versitygw
HELM        := $(BIN)/helm
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
# staticcheck is run through `go run` at a pinned version (nothing to install).
STATICCHECK_VERSION ?= v0.8.2
# Each fuzz target runs this long in `make fuzz`.
FUZZTIME    ?= 20s
BENCHTIME   ?= 1s
# The test run of CI: go test's own per-package timeout.
TEST_TIMEOUT ?= 15m

.PHONY: help build versitygw test test-integration test-deploy bench bench-mount bench-mem bench-swarm bench-warm bench-sim fuzz lint demo clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/shoal
	$(GO) build -ldflags '$(LDFLAGS)' -o $(SHOAL) ./cmd/shoal

versitygw: $(VERSITYGW) ## build bin/versitygw (the S3 server the tests run), pinned in tools/

$(VERSITYGW): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(VERSITYGW) github.com/versity/versitygw/cmd/versitygw

test: build versitygw ## run every test with -race, end-to-end tests included, and the deployment tests (what CI runs)
	SHOAL_BIN=$(CURDIR)/$(SHOAL) SHOAL_VERSITYGW=$(CURDIR)/$(VERSITYGW) \
		$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) test-deploy

# The deploy module renders the chart with Helm's library and decodes it with
# the Kubernetes API types: single-goroutine tests, run without -race (which
# would double the build of those large modules for nothing).
test-deploy: build $(HELM) ## Helm chart (render, strict decode, helm lint/template, args accepted by bin/shoal), manifests, dashboard/rules copies, Dockerfile
	cd deploy && SHOAL_BIN=$(CURDIR)/$(SHOAL) HELM=$(CURDIR)/$(HELM) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# helm, built from the deploy module at the version its go.mod pins.
$(HELM): deploy/go.mod deploy/go.sum
	cd deploy && $(GO) build -o ../$(HELM) helm.sh/helm/v4/cmd/helm

test-integration: build versitygw ## run only the end-to-end tests (real processes) in ./integration
	SHOAL_BIN=$(CURDIR)/$(SHOAL) SHOAL_VERSITYGW=$(CURDIR)/$(VERSITYGW) \
		$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./integration/...

bench: build versitygw ## scenario benchmarks S1/S2 (BENCHMARKS.md) -> .bench/results.json, plus hot-path Go benchmarks -> .bench/micro.txt
	@mkdir -p .bench
	SHOAL_BENCH=1 SHOAL_BIN=$(CURDIR)/$(SHOAL) SHOAL_VERSITYGW=$(CURDIR)/$(VERSITYGW) \
		$(GO) test ./bench -run TestScenarios -count=1 -timeout 40m -v | tee .bench/scenarios.txt
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=$(BENCHTIME) ./blockstore/... ./gateway/... ./transfer/... | tee .bench/micro.txt

bench-mount: build versitygw ## M1: the FUSE mount vs the gateway on one node, random 4 KiB reads, ls of 10,000 keys, a mount straight from the origin (needs FUSE) -> .bench/mount.json
	@mkdir -p .bench
	SHOAL_BENCH=1 SHOAL_BENCH_SCENARIOS=M1 SHOAL_BENCH_OUT=.bench/mount.json SHOAL_BIN=$(CURDIR)/$(SHOAL) SHOAL_VERSITYGW=$(CURDIR)/$(VERSITYGW) \
		$(GO) test ./bench -run TestScenarios -count=1 -timeout 30m -v | tee .bench/mount.txt

bench-mem: build versitygw ## S8: RSS of an idle node indexing 1M chunks and peak RSS streaming a 10 GiB object (SHOAL_BENCH_S8_CHUNKS, SHOAL_BENCH_S8_SIZE) -> .bench/mem.json
	@mkdir -p .bench
	SHOAL_BENCH=1 SHOAL_BENCH_SCENARIOS=S8 SHOAL_BENCH_OUT=.bench/mem.json SHOAL_BIN=$(CURDIR)/$(SHOAL) SHOAL_VERSITYGW=$(CURDIR)/$(VERSITYGW) \
		$(GO) test ./bench -run TestScenarios -count=1 -timeout 40m -v | tee .bench/mem.txt

bench-sim: ## X1 scale simulation (10,000 nodes, flow-level, the read path's own placement; 10 seeds; SHOAL_SIM_SCALE=small for a quick look) -> .bench/sim.json
	@mkdir -p .bench
	SHOAL_BENCH_SIM=1 $(GO) test ./sim -run TestSimBench -count=1 -timeout 120m -v | tee .bench/sim.txt

bench-swarm: build versitygw ## S3/S4 swarm scenarios in network namespaces with tc-shaped links (needs root; SHOAL_SWARM_SCENARIOS=L1 for L1) -> .bench/swarm.json
	SHOAL_BIN=$(CURDIR)/$(SHOAL) SHOAL_VERSITYGW=$(CURDIR)/$(VERSITYGW) SHOAL_BENCH_SWARM=1 \
		$(GO) test ./bench/swarm -run TestSwarmScenarios -count=1 -timeout 60m -v

bench-warm: build versitygw ## warm-up figures: 2 GiB over 4 nodes vs one node alone, origin amplification, replica repair after a kill -> .bench/warm.json
	SHOAL_BENCH_WARM=1 SHOAL_BIN=$(CURDIR)/$(SHOAL) SHOAL_VERSITYGW=$(CURDIR)/$(VERSITYGW) \
		$(GO) test ./integration -run TestWarmFigures -count=1 -timeout 30m -v

fuzz: ## run every fuzz target for FUZZTIME (default 20s) each
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

lint: ## gofmt, go vet, staticcheck (if it builds here)
	@out=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' ./...)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -version >/dev/null 2>&1; then \
		echo "staticcheck $(STATICCHECK_VERSION)"; \
		$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...; \
	else echo "staticcheck $(STATICCHECK_VERSION) does not build here: skipped"; fi

demo: build ## start a 3-node cluster on loopback over sample data in .demo/ (DEMO_ONESHOT=1: run the examples and exit)
	SHOAL_BIN=$(CURDIR)/$(SHOAL) ./scripts/demo.sh

clean: ## remove build outputs, demo data and bench results
	rm -rf $(BIN) .demo .bench
