# brana — build and test entry points. `make test` is what CI runs (.ci/run).
GO      ?= go
FUZZTIME ?= 10s

.PHONY: all build test test-deps vet unit fuzz bench demo screenshots

all: build

build:
	$(GO) build -trimpath -o bin/brana ./cmd/brana

# Everything CI checks, installing what the tests need when it is missing.
test: test-deps vet unit fuzz

test-deps:
	./scripts/install-test-deps

vet:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

# Each native fuzz target runs briefly; crashers land in testdata/fuzz and are committed.
fuzz:
	./scripts/fuzz-all $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./testbench/bench/

demo:
	$(GO) run ./cmd/brana demo

# The console's screenshots in docs/screenshots, taken by the browser test.
screenshots: test-deps
	BRANA_SCREENSHOTS=$(CURDIR)/docs/screenshots CI=true $(GO) test -count=1 -run '^TestConsoleEndToEnd$$' ./testbench/scenario/
