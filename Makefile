# Herald — see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run test build vet fuzz bench clean

## run: the service on embedded SQLite in development mode (demo employees, printed curl commands)
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/herald serve --dev

## test: vet, formatting, the race-enabled test suite, and short fuzz runs
test: vet
	$(GO) test -race -count=1 ./...
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

## bench: micro-benchmarks (-count 3) and a short load run (3×), medians written to BENCHMARKS.md;
## a few minutes. Long scenarios: BENCH_SCENARIOS="streams unicast broadcast …" (README, Benchmarks).
bench:
	GO=$(GO) scripts/bench.sh

clean:
	rm -rf bin
