# pgwarden: the two commands of a fresh machine are `make demo` and `make test`.
GO       ?= go
BIN      := bin/pgwarden
# Fuzz budgets are counts of executions, not durations: go1.26's fuzzer can
# report a spurious "context deadline exceeded" when a -fuzztime duration
# expires mid-run (go.dev/issue/75804, fixed in go1.27). Each is about 10s here.
FUZZ_WIRE  ?= 300000x
FUZZ_RELAY ?= 40000x
FUZZ_SQL   ?= 20000x
FUZZ_AUTH  ?= 20000x
FUZZ_JOURNAL ?= 5000x
FUZZ_MASK  ?= 30000x

.PHONY: build demo test check unit compat compat-deps fuzz bench deps clean

## build: the example gateway binary, bin/pgwarden
build:
	$(GO) build -o $(BIN) ./examples/gateway

## demo: a throwaway PostgreSQL with sample data behind the gateway; prints how to connect
demo: deps build
	$(BIN) demo

## test: everything CI runs (vet, formatting, the test suite with -race, a short fuzz pass)
test: deps compat-deps check unit fuzz

check:
	$(GO) vet ./...
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# unit runs the proxy a second time with every session on goroutines, the
# relay used off Linux (on Linux the first run uses the event loop).
unit:
	$(GO) test -race -count=1 -timeout 15m ./...
	PGWARDEN_TEST_RELAY=goroutines $(GO) test -race -count=1 -timeout 10m ./proxy

## compat: the client compatibility matrix alone (make test runs it too, in unit)
compat: deps compat-deps
	$(GO) test -race -count=1 -v ./internal/compat

## compat-deps: install the matrix's clients when missing (Debian packages, npm)
compat-deps:
	@sh .ci/compat-deps

## fuzz: a short pass of each fuzz target (the corpus is in testdata/fuzz)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZ_WIRE) ./internal/wire
	$(GO) test -run '^$$' -fuzz '^FuzzStartup$$' -fuzztime $(FUZZ_WIRE) ./internal/wire
	$(GO) test -run '^$$' -fuzz '^FuzzDecoders$$' -fuzztime $(FUZZ_WIRE) ./internal/wire
	$(GO) test -run '^$$' -fuzz '^FuzzClientMessages$$' -fuzztime $(FUZZ_RELAY) ./proxy
	$(GO) test -run '^$$' -fuzz '^FuzzServerMessages$$' -fuzztime $(FUZZ_RELAY) ./proxy
	$(GO) test -run '^$$' -fuzz '^FuzzMaskDataRow$$' -fuzztime $(FUZZ_MASK) ./proxy
	$(GO) test -run '^$$' -fuzz '^FuzzMaskCopyRow$$' -fuzztime $(FUZZ_MASK) ./proxy
	$(GO) test -run '^$$' -fuzz '^FuzzBindResultFormats$$' -fuzztime $(FUZZ_MASK) ./proxy
	$(GO) test -run '^$$' -fuzz '^FuzzMaskers$$' -fuzztime $(FUZZ_MASK) ./mask
	$(GO) test -run '^$$' -fuzz '^FuzzDetectors$$' -fuzztime $(FUZZ_MASK) ./mask
	$(GO) test -run '^$$' -fuzz '^FuzzAnalyze$$' -fuzztime $(FUZZ_SQL) ./internal/analysis
	$(GO) test -run '^$$' -fuzz '^FuzzLineage$$' -fuzztime $(FUZZ_SQL) ./internal/lineage
	$(GO) test -run '^$$' -fuzz '^FuzzParseOAuthBearer$$' -fuzztime $(FUZZ_AUTH) ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzOIDCToken$$' -fuzztime $(FUZZ_AUTH) ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzSAMLPassword$$' -fuzztime $(FUZZ_AUTH) ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzReadJournal$$' -fuzztime $(FUZZ_JOURNAL) ./session/journal
	$(GO) test -run '^$$' -fuzz '^FuzzRecoverLog$$' -fuzztime $(FUZZ_JOURNAL) ./session/journal
	$(GO) test -run '^$$' -fuzz '^FuzzMarshalEvent$$' -fuzztime $(FUZZ_MASK) ./session

## bench: pgbench -S direct, through pgwarden and through pgbouncer, in one run
bench: deps build
	$(GO) run ./internal/cmd/bench -pgwarden $(BIN)

## deps: install the PostgreSQL server, psql and pgbench when missing (Debian)
deps:
	@sh .ci/deps

clean:
	rm -rf bin bench-results
