# vserv — build, test, lint, bench.
#
#   make build   binaries into ./bin
#   make test    every test, with -race (installs missing Debian packages when root)
#   make lint    gofmt, go vet, staticcheck
#   make bench   vbench against a fresh server; results into BENCHMARKS.md
#   make fuzz    long fuzzing (FUZZTIME=1m per target)
#   make soak    long crash and load runs (VSERV_SOAK=1)

GO        ?= go
BIN       := bin
FUZZTIME  ?= 1m
# Debian packages some tests need: independent TOTP and QR implementations,
# iproute2 for the network-namespace test of `uini`, and openssh-client
# (ssh-agent) for the litewitness interop test.
DEB_PKGS  := oathtool zbar-tools iproute2 openssh-client
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test test-deps lint bench fuzz soak clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

test: test-deps
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) build ./verify ./canon ./apps/...   # the public verifier and the rules run in browsers
	# Every binary builds for the other platforms vserv supports, and the
	# tests compile there (vet type-checks them); docs/operations.md says
	# what differs on each.
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=linux GOARCH=arm64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	$(GO) test -race -timeout 20m ./...

# Installs what is missing with apt-get when run as root; otherwise says what
# to install (the tests that need a package fail with a clear message).
test-deps:
	@missing=""; \
	command -v oathtool >/dev/null || missing="$$missing oathtool"; \
	command -v zbarimg >/dev/null || missing="$$missing zbar-tools"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v ssh-agent >/dev/null || missing="$$missing openssh-client"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; \
		fi; \
	fi

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench: build
	$(BIN)/vbench --vserv $(BIN)/vserv --write BENCHMARKS.md

fuzz:
	$(GO) test ./internal/wire -run '^$$' -fuzz '^FuzzReadMessage$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/wire -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME)

soak:
	VSERV_SOAK=1 $(GO) test -race -timeout 60m ./...

clean:
	rm -rf $(BIN)
