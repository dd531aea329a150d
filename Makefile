# Palvella build. `make build` writes bin/palvella; `make test` runs every test.
GO        ?= go
BIN       := bin
TOOLS     := $(BIN)/tools
# A semantic version: the release tag (vX.Y.Z) without its v, or, between
# releases, 0.1.0-dev with the commit as build metadata.
VERSION   ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo $${v\#v} || echo 0.1.0-dev+$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
LDFLAGS   := -s -w -X github.com/palvella/palvella/core/version.Version=$(VERSION)
PROTO_GEN := $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc

.PHONY: build test test-race bench proto proto-check lint tools clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/palvella ./cmd/palvella

# The terraform job plugin's tests run the real OpenTofu: PALVELLA_TOFU, or
# the one .ci/build-tofu builds once and caches outside the clone; the nomad
# engine's tests run a real Nomad agent: PALVELLA_NOMAD, or .ci/build-nomad's;
# the kubernetes engine's a real control plane with kwok nodes:
# PALVELLA_K8S_BIN, or .ci/build-k8s's; the docker engine's login tests a
# real Distribution registry: PALVELLA_REGISTRY_BIN, or .ci/build-registry's.
test: build
	PALVELLA_TOFU=$${PALVELLA_TOFU:-$$(.ci/build-tofu)} PALVELLA_NOMAD=$${PALVELLA_NOMAD:-$$(.ci/build-nomad)} \
	PALVELLA_K8S_BIN=$${PALVELLA_K8S_BIN:-$$(.ci/build-k8s)} PALVELLA_REGISTRY_BIN=$${PALVELLA_REGISTRY_BIN:-$$(.ci/build-registry)} \
	PALVELLA_BIN=$(CURDIR)/$(BIN)/palvella $(GO) test -count=1 -timeout 45m ./...

test-race: build
	PALVELLA_BIN=$(CURDIR)/$(BIN)/palvella $(GO) test -race -count=1 ./core/... ./plugin-sdk/...

bench: build
	PALVELLA_BIN=$(CURDIR)/$(BIN)/palvella $(GO) test -run '^$$' -bench . -benchtime 2s ./bench/... ./registry/client/ ./registry/resolve/

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

# registry.json, the public plugin index: a standalone build of each first-party plugin
# for this platform (a main that calls the plugin's Serve), published with the download
# URLs of release $(RELEASE) and signed with the root key, which maintainers keep offline.
# Upload $(REGISTRY_OUT)/index/artifacts/*/*/* as the release's assets. See docs/registry/hosting.md.
ROOT_KEY         ?= $(HOME)/palvella-root.key
RELEASE          ?= v0.1.0
REGISTRY_OUT     := $(BIN)/registry
REGISTRY_VALID   ?= 8760h
REGISTRY_PLUGINS := authentication/token authorization/rbac credential/builtin database/sqlite \
                    database/postgres storage/filesystem job/terraform action/standard engine/local engine/docker \
                    engine/nomad engine/kubernetes

.PHONY: registry-index
registry-index: build
	rm -rf $(REGISTRY_OUT) && mkdir -p $(REGISTRY_OUT)/src $(REGISTRY_OUT)/dist
	$(BIN)/palvella registry init $(REGISTRY_OUT)/index --name public --root-key $(ROOT_KEY) --expires $(REGISTRY_VALID)
	set -e; for p in $(REGISTRY_PLUGINS); do \
	  name=$$(dirname $$p)-$$(basename $$p); mkdir -p $(REGISTRY_OUT)/src/$$name; \
	  printf 'package main\n\nimport (\n\t"os"\n\n\tp "github.com/palvella/palvella/plugins/%s"\n)\n\nfunc main() { os.Exit(p.Serve()) }\n' $$p \
	    > $(REGISTRY_OUT)/src/$$name/main.go; \
	  $(GO) build -trimpath -ldflags '-s -w' -o $(REGISTRY_OUT)/dist/$$name ./$(REGISTRY_OUT)/src/$$name; \
	  $(BIN)/palvella registry publish $(REGISTRY_OUT)/index --key $(ROOT_KEY) --plugin $(REGISTRY_OUT)/dist/$$name \
	    --name $$name --license Apache-2.0 --official --homepage https://github.com/palvella/palvella/tree/main/plugins/$$p \
	    --base-url https://github.com/palvella/palvella/releases/download/$(RELEASE) \
	    --expires $(REGISTRY_VALID) --delegation-expires $(REGISTRY_VALID); \
	done
	cp $(REGISTRY_OUT)/index/index.json registry.json
	$(BIN)/palvella registry verify registry.json --no-download
