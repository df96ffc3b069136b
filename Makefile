# Herald — see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# The API document's Node tools (see lint-openapi, generate).
NODE_TOOLS := openapi/node_modules/.package-lock.json

.PHONY: help run test build vet fuzz bench clean generate lint-openapi test-parts mutate
.DEFAULT_GOAL := help

## help: this list of targets
help:
	@echo 'Herald: make TARGET'
	@echo
	@awk '/^## [a-z-]+: /{ sub(/^## /, ""); n = index($$0, ": "); printf "  %-14s %s\n", substr($$0, 1, n-1), substr($$0, n+2); next } /^## /{ sub(/^## /, ""); printf "  %-14s %s\n", "", $$0 }' $(MAKEFILE_LIST)
	@echo
	@echo 'Variables: GO (go), FUZZTIME (10s), TEST_DATABASE_URL (PostgreSQL tests), CI=true (tests never skip), BENCH_* (see README, Benchmarks).'

## run: Herald on embedded SQLite in development mode: demo employees, demo page, printed commands
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/herald serve --dev

## test: gofmt, go vet, the race-enabled tests (both stream modes), short fuzz runs
test: vet test-parts
	$(GO) test -race -count=1 -timeout 30m ./...
	$(GO) test -race -count=1 -timeout 30m ./handlers -args -goroutine-streams
	$(MAKE) fuzz FUZZTIME=5s
	@$(MAKE) --no-print-directory test-parts

# test-parts says which tests skip here for want of a part, and how to run them.
test-parts:
	@if [ -z "$$TEST_DATABASE_URL" ]; then echo "make test: TEST_DATABASE_URL is not set: the PostgreSQL tests skip (e.g. TEST_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'; see README, Development)"; fi
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || echo "make test: no Chromium: the browser tests skip (apt-get install chromium)"
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || echo "make test: no nginx: the reverse-proxy test skips (apt-get install nginx)"
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || echo "make test: no node/npm: the Node and socket.io-client tests skip (apt-get install nodejs npm)"

## build: the binary, bin/herald
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/herald ./cmd/herald

## vet: gofmt (lists files to format) and go vet
vet:
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "$$unformatted" >&2; echo "gofmt: the files above need formatting (gofmt -w FILE)" >&2; exit 1; fi
	$(GO) vet ./...

FUZZTIME ?= 10s
FUZZ_TARGETS := FuzzRoundTrip:./sse FuzzReader:./sse FuzzWSFeed:./sse FuzzSIOFeed:./sse \
	FuzzAuthenticate:./auth FuzzPublishBody:./handlers FuzzExactAtSight:./handlers \
	FuzzPublishCenterFields:./handlers FuzzEmployeeBody:./handlers
## fuzz: each fuzz target for FUZZTIME. A run that ends with only "context deadline
## exceeded" and writes no failing input is Go's fuzztime race (go.dev/issue/75804,
## fixed in Go 1.27), not a finding: it is reported and passes; a failing input fails.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) $$pkg"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); st=$$?; \
		printf '%s\n' "$$out"; \
		if [ $$st -ne 0 ]; then \
			if printf '%s\n' "$$out" | grep -q '^    context deadline exceeded$$' && ! printf '%s\n' "$$out" | grep -q 'Failing input written'; then \
				echo "fuzz: $$name hit Go's fuzztime race (go.dev/issue/75804) after its full run, no failing input: not a failure"; \
			else exit $$st; fi; \
		fi; \
	done

## bench: micro-benchmarks (-count 3) and a short load run (3×), medians written to BENCHMARKS.md;
## a few minutes. Long scenarios: BENCH_SCENARIOS="streams unicast broadcast …" (README, Benchmarks).
bench:
	GO=$(GO) cmd/herald-bench/bench.sh

## mutate: mutation testing (gremlins v0.6.0) of sse, auth, store and the stream and publish files of
## handlers, one package at a time, niced; results in bin/mutate/. Not part of test or CI.
## Bounded to 30 min (MUTATE_BUDGET=0: no bound); MUTATE_PKGS="sse auth" and MUTATE_EXCLUDE narrow it.
mutate:
	GO=$(GO) internal/mutate/mutate.sh

## clean: remove bin/
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
