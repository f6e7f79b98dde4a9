# reconciler: see README.md.
GO        ?= go
BIN       := bin/reconciler
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
STATE_DIR := .reconciler
# Short fuzz run in `make test`; `make fuzz FUZZTIME=10m` for a long one.
FUZZTIME  ?= 20s

# Mutation testing: the packages `make mutate` covers; PKGS="./pkg/spec"
# limits a run.
MUTATE_PKGS := ./pkg/spec ./pkg/controller ./pkg/store ./pkg/api
PKGS      ?= $(MUTATE_PKGS)

.PHONY: build images run test unit e2e conformance fuzz lint bench soak clean mutate

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/reconciler

# reconciler/box:latest, the project's static demo/test program, and
# reconciler/egress-proxy:latest, the egress allow-list proxy, built
# through the Docker API from a tar context (no registry needed).
images:
	$(GO) run ./internal/tools/buildimages

run: build images
	@mkdir -p $(STATE_DIR)
	./$(BIN) agent --specs-dir ./specs --state $(STATE_DIR)/state.db --socket $(STATE_DIR)/reconciler.sock

# Every test: unit, conformance (test-only module), fuzz (bounded), e2e.
test: lint unit conformance fuzz e2e

# -tags docker adds the tests that need the Docker daemon (pkg/docker's
# client tests, the box image build); without it the unit tests are hermetic.
unit:
	$(GO) test -race -count=1 -tags docker ./pkg/... ./cmd/... ./internal/...
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...

conformance:
	cd test/conformance && $(GO) test -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./pkg/spec

# -v so each fault scenario's summary line (faults injected, converged,
# duplicates, orphans, records lost) is printed.
e2e: build
	$(GO) test -v -count=1 -timeout 25m ./test/e2e/...

# The long fault scenarios (more kills, more specs, longer churn).
soak: build
	RECONCILER_SOAK=1 $(GO) test -v -count=1 -timeout 90m ./test/e2e/... -ginkgo.v -ginkgo.label-filter=faults

# Benchmarks against the local Docker daemon, with every baseline measured
# in the same run, judged against issue 13's targets (PASS/MISS with the
# figures; a failed sample is a MISS); writes bench/results/{results.json,
# results.md,results.png,controlplane.txt}. BENCHFLAGS=--quick for a smoke
# run, which writes to bench/results/quick/ (git-ignored) instead.
bench:
	@command -v docker-compose >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose; }
	cd bench && $(GO) run ./cmd/reconbench $(BENCHFLAGS)

# Mutation testing with gremlins (pinned, from the module proxy), 2 workers:
# test efficacy and mutant coverage per package, and every mutant that
# lived, marked when test/mutants-accepted.txt accepts it as equivalent.
mutate:
	$(GO) run ./internal/tools/mutate -workers 2 -accepted test/mutants-accepted.txt $(PKGS)

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" && exit 1)
	$(GO) vet ./...
	$(GO) vet -tags docker ./...
	$(GO) mod tidy -diff

clean:
	rm -rf bin $(STATE_DIR)
