# Palvella build. `make build` writes bin/palvella; `make test` runs every test.
GO        ?= go
BIN       := bin
TOOLS     := $(BIN)/tools
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/palvella/palvella/core/version.Version=$(VERSION)
PROTO_GEN := $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc

.PHONY: build test test-race bench proto proto-check lint tools clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/palvella ./cmd/palvella

test: build
	PALVELLA_BIN=$(CURDIR)/$(BIN)/palvella $(GO) test -count=1 ./...

test-race: build
	PALVELLA_BIN=$(CURDIR)/$(BIN)/palvella $(GO) test -race -count=1 ./core/... ./plugin-sdk/...

bench: build
	PALVELLA_BIN=$(CURDIR)/$(BIN)/palvella $(GO) test -run '^$$' -bench . -benchtime 2s ./bench/...

# Code generators are pinned in tools/go.mod and installed from the Go module proxy.
$(TOOLS)/%: tools/go.mod tools/go.sum
	cd tools && GOBIN=$(CURDIR)/$(TOOLS) $(GO) install $(shell grep -h "/$*\"" tools/tools.go | tr -d '\t_"')

tools: $(PROTO_GEN)

proto: $(PROTO_GEN)
	cd proto && ../$(TOOLS)/buf lint && ../$(TOOLS)/buf generate

# Fails when the checked-in generated code differs from what the pinned tools write.
proto-check: $(PROTO_GEN)
	@tmp=$$(mktemp -d) && cp -r proto $$tmp/ && \
	  (cd $$tmp/proto && find . -name '*.pb.go' -delete && $(CURDIR)/$(TOOLS)/buf generate \
	     --template '{"version":"v2","plugins":[{"local":"$(CURDIR)/$(TOOLS)/protoc-gen-go","out":".","opt":"paths=source_relative"},{"local":"$(CURDIR)/$(TOOLS)/protoc-gen-go-grpc","out":".","opt":"paths=source_relative"}]}') && \
	  if diff -r proto $$tmp/proto >/dev/null; then echo "generated code is up to date"; rm -rf $$tmp; \
	  else diff -r proto $$tmp/proto | head -40; rm -rf $$tmp; echo "generated code is stale: run make proto"; exit 1; fi
	cd proto && ../$(TOOLS)/buf lint

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

clean:
	rm -rf $(BIN)
