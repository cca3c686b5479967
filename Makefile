# brana — build and test entry points. `make test` is what CI runs (.ci/run).
GO      ?= go
FUZZTIME ?= 10s
# Stamped into gateway.Version and gateway.Commit by build-all; empty means
# `git describe --tags --always --dirty` and the short commit.
VERSION ?=
COMMIT  ?=

.PHONY: all build build-all package check-reproducible test test-deps vet unit test-arm test-deb fuzz bench demo screenshots

all: build

build:
	$(GO) build -trimpath -o bin/brana ./cmd/brana

# Static (CGO_ENABLED=0), reproducible binaries for the gateways in dist/:
# brana-linux-amd64, -arm64, -armv7 and -armv6.
build-all:
	VERSION="$(VERSION)" COMMIT="$(COMMIT)" GO="$(GO)" ./scripts/build-all dist

# build-all, plus the .deb for amd64, arm64 and armhf (nfpm, a Go tool
# dependency): dist/brana_VERSION_ARCH.deb. VERSION must then be a Debian
# version; by default it is derived from the last commit.
package:
	VERSION="$(VERSION)" COMMIT="$(COMMIT)" GO="$(GO)" ./scripts/build-deb dist

# build-all twice, the second time elsewhere with an empty build cache, and
# compare the binaries. Several minutes, so not part of `make test`.
check-reproducible:
	VERSION="$(VERSION)" COMMIT="$(COMMIT)" GO="$(GO)" ./scripts/check-reproducible

# Everything CI checks, installing what the tests need when it is missing.
test: test-deps vet unit test-arm test-deb fuzz

test-deps:
	./scripts/install-test-deps

vet:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

# The pure-Go packages' tests as linux/arm64 and linux/arm (GOARM=7) binaries
# under qemu-user, for 32-bit and alignment bugs; go vet ./... for 32-bit ARM.
test-arm: test-deps
	GO="$(GO)" ./scripts/test-arm

# Every binary and .deb is built; the amd64 package is installed, upgraded
# and purged with dpkg, and its unit verified (root only; CI runs as root).
test-deb: test-deps
	GO="$(GO)" ./scripts/test-deb

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
