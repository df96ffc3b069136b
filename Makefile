# Herald — see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# The API document's Node tools (see lint-openapi, generate).
NODE_TOOLS := openapi/node_modules/.package-lock.json

.PHONY: run test build vet fuzz bench clean generate lint-openapi

## run: the service on embedded SQLite in development mode (demo employees, printed curl commands)
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/herald serve --dev

## test: vet, formatting, the race-enabled test suite, and short fuzz runs
test: vet
	$(GO) test -race -count=1 ./...
	$(GO) test -race -count=1 ./handlers -args -goroutine-streams
	$(MAKE) fuzz FUZZTIME=5s

## build: the binary in bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/herald ./cmd/herald

vet:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: the files above need formatting" && exit 1)
	$(GO) vet ./...

FUZZTIME ?= 10s
## fuzz: each fuzz target for FUZZTIME
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRoundTrip$$' -fuzztime $(FUZZTIME) ./sse
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) ./sse
	$(GO) test -run '^$$' -fuzz '^FuzzAuthenticate$$' -fuzztime $(FUZZTIME) ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzPublishBody$$' -fuzztime $(FUZZTIME) ./handlers
	$(GO) test -run '^$$' -fuzz '^FuzzEmployeeBody$$' -fuzztime $(FUZZTIME) ./handlers

## bench: micro-benchmarks (-count 3) and a short load run (3×), medians written to BENCHMARKS.md;
## a few minutes. Long scenarios: BENCH_SCENARIOS="streams unicast broadcast …" (README, Benchmarks).
bench:
	GO=$(GO) cmd/herald-bench/bench.sh

clean:
	rm -rf bin

## generate: the Go client (openapi/client/client.gen.go) from openapi/openapi.yaml, and the
## /docs renderer (openapi/docs/) from the Redoc package pinned in openapi/package.json; CI fails if either is stale
generate: $(NODE_TOOLS)
	$(GO) generate ./openapi/client
	cp openapi/node_modules/redoc/bundles/redoc.standalone.js openapi/node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt openapi/docs/
	cp openapi/node_modules/redoc/LICENSE openapi/docs/LICENSE

## lint-openapi: Redocly CLI lints openapi/openapi.yaml (rules: openapi/redocly.yaml, recommended-strict)
lint-openapi: $(NODE_TOOLS)
	cd openapi && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true npx --no-install redocly lint openapi.yaml

# The document's Node tools at the versions openapi/package-lock.json pins,
# installed in openapi/node_modules. No install scripts: both packages ship
# ready-built.
$(NODE_TOOLS): openapi/package.json openapi/package-lock.json
	cd openapi && npm ci --ignore-scripts --no-audit --no-fund
