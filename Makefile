# Herald — see README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run test build vet fuzz clean

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

clean:
	rm -rf bin
