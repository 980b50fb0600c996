# pushpull — see README.md. `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go
BIN := $(CURDIR)/bin

# Test servers and linters, installed into ./bin by `make tools` from the Go
# module proxy. internal/testing/testserver finds the servers there.
FAKE_GCS_SERVER_VERSION := v1.56.1
VERSITYGW_VERSION       := v1.8.0
STATICCHECK_VERSION     := v0.8.2
# MinIO, for `make test-stores` only (a large build: not part of `make tools`).
MINIO_VERSION           := v0.0.0-20260212201848-7aac2a2c5b7c

# The programs `make build` puts in ./bin (those whose cmd/ directory exists).
CMDS := release pushui pulld pushctl

TEST_TIMEOUT ?= 10m
TESTFLAGS ?=
# Short fuzz runs in `make test`: one package:FuzzName pair per entry, every
# parser of the project. FUZZTIME is a count of inputs, not a duration: a
# count is the same work on any machine, and Go 1.26's fuzz coordinator can
# end a timed run with "context deadline exceeded" (golang/go#75804).
FUZZTIME ?= 5000x
FUZZ_JOBS ?= 2
FUZZ_TARGETS ?= \
	./manifest:FuzzParsePackageName \
	./manifest:FuzzParse \
	./manifest:FuzzCheckName \
	./manifest:FuzzParseRolloutRecord \
	./pkgformat:FuzzCheckEntry \
	./pkgformat:FuzzExtract \
	./pkgformat:FuzzRender \
	./internal/release:FuzzParseServers \
	./pkgformat:FuzzCheckScript \
	./pkgformat:FuzzParseControl \
	./internal/release:FuzzRedactURL \
	./internal/skia:FuzzParseName \
	./internal/nudge:FuzzParseTemplate \
	./internal/nudge:FuzzParseGCE \
	./internal/nudge:FuzzParseTopic \
	./internal/nudge/urltemplate:FuzzParseURLTemplate \
	./internal/pulld:FuzzParseHostInfo \
	./internal/pushui/auth:FuzzParseHtpasswd \
	./internal/pushui/web:FuzzParseConfigText \
	./internal/fleetview:FuzzCommitURL \
	./internal/pushui/api:FuzzPrecondition \
	./client:FuzzParseNetrc

.PHONY: help tools build test test-stores fuzz demo bench lint package clean distclean

help:
	@echo "make build   go build ./... and the programs into ./bin"
	@echo "make test    install test servers (make tools), go test ./..., then make fuzz"
	@echo "make fuzz    short fuzz runs of FUZZ_TARGETS (FUZZTIME inputs each)"
	@echo "make test-stores   the bucket contract suite against more S3 servers (MinIO), not part of make test"
	@echo "make demo    a three-server fleet on this machine, pushui on 127.0.0.1:8000 (Ctrl-C stops it)"
	@echo "make bench   run the benchmarks"
	@echo "make package Debian packages of pulld (with its systemd unit), pushui and release into ./dist"
	@echo "make lint    go vet and staticcheck"
	@echo "make tools   install pinned fake-gcs-server, versitygw and staticcheck into ./bin"
	@echo "make clean   remove built programs and test artifacts (keeps the tools)"
	@echo "make distclean   also remove ./bin and the tools in it"

# install-tool NAME PACKAGE VERSION: go install PACKAGE@VERSION into ./bin
# unless bin/NAME was already built from exactly that package and version
# (read from the binary's build information, so re-runs cost nothing).
define install-tool
	@if [ "$$($(GO) version -m $(BIN)/$(1) 2>/dev/null | awk '$$1=="path"{p=$$2} $$1=="mod"{v=$$3} END{print p, v}')" = "$(2) $(3)" ]; then \
		echo "bin/$(1) $(3): installed"; \
	else \
		echo "GOBIN=$(BIN) $(GO) install $(2)@$(3)"; \
		GOBIN=$(BIN) $(GO) install $(2)@$(3); \
	fi
endef

tools:
	$(call install-tool,fake-gcs-server,github.com/fsouza/fake-gcs-server,$(FAKE_GCS_SERVER_VERSION))
	$(call install-tool,versitygw,github.com/versity/versitygw/cmd/versitygw,$(VERSITYGW_VERSION))
	$(call install-tool,staticcheck,honnef.co/go/tools/cmd/staticcheck,$(STATICCHECK_VERSION))

build:
	$(GO) build ./...
	@for c in $(CMDS); do \
		if [ -d cmd/$$c ]; then \
			echo "$(GO) build -o bin/$$c ./cmd/$$c"; \
			$(GO) build -o bin/$$c ./cmd/$$c; \
		fi; \
	done

# The fuzz runs go beside the tests: the end-to-end tests, the longest,
# mostly wait on hosts, and the fuzz runs use the CPU they leave. Both must
# pass.
test: tools
	@$(MAKE) --no-print-directory fuzz > $(CURDIR)/.fuzz.log 2>&1 & fuzz=$$!; \
	tests=0; $(GO) test -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./... || tests=$$?; \
	fuzzed=0; wait $$fuzz || fuzzed=$$?; cat $(CURDIR)/.fuzz.log; rm -f $(CURDIR)/.fuzz.log; \
	if [ $$fuzzed -ne 0 ]; then echo "make test: the fuzz runs failed (above)" >&2; fi; \
	[ $$tests -eq 0 ] && [ $$fuzzed -eq 0 ]

# The blobstore contract suite (conditional writes included) against S3
# servers beyond the one `make test` starts. MinIO is installed into ./bin
# from the Go module proxy on first use; the build takes a few minutes.
test-stores: tools
	$(call install-tool,minio,github.com/minio/minio,$(MINIO_VERSION))
	$(GO) test -tags stores -count=1 -run '^TestContractStores$$' -v ./blobstore

# Each target must exist: a renamed or deleted fuzz test fails here instead
# of silently fuzzing nothing. And each fuzz test must be a target: a new
# parser's fuzz test that nobody added here fails too.
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			case " $(strip $(FUZZ_TARGETS)) " in *":$$name "*) ;; \
			*) echo "fuzz test $$name in $$f is not in FUZZ_TARGETS (Makefile)" >&2; exit 1;; esac; \
		done; \
	done
	@listed=""; for pkg in $$(for ft in $(FUZZ_TARGETS); do echo $${ft%%:*}; done | sort -u); do \
		listed="$$listed $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' | sed "s|^|$$pkg:|" | tr '\n' ' ')"; \
	done; \
	for ft in $(FUZZ_TARGETS); do \
		case " $$listed " in *" $$ft "*) ;; \
		*) echo "fuzz target $$ft not found (FUZZ_TARGETS in Makefile)" >&2; exit 1;; esac; \
	done
	@# FUZZ_JOBS runs at a time, each on one worker: most of a short run is
	@# building its instrumented test binary, which the other run overlaps.
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(FUZZ_JOBS) -I{} sh -c '\
		ft={}; pkg=$${ft%%:*}; name=$${ft##*:}; log=$$(mktemp); \
		if $(GO) test -run="^\$$" -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -parallel=1 $$pkg >$$log 2>&1; then \
			echo "ok   $$pkg $$name ($(FUZZTIME))"; rm -f $$log; \
		else \
			echo "FAIL $$pkg $$name:"; cat $$log; rm -f $$log; exit 255; \
		fi' 

# The demo (examples/demo): releases the sample app examples/hello into a
# file:// bucket in a new temporary directory, runs pushui on 127.0.0.1:8000
# and a pulld for each of three servers, and stops it all on Ctrl-C.
# DEMOFLAGS passes flags to it, e.g. DEMOFLAGS='-dir /tmp/pushpull-demo'.
DEMOFLAGS ?=
# It is built rather than run with `go run`, which exits 1 after a Ctrl-C
# even when the demo stopped cleanly.
demo: build
	$(GO) build -o $(BIN)/pushpull-demo ./examples/demo
	$(BIN)/pushpull-demo -bin $(BIN) $(DEMOFLAGS)

# Every benchmark once (BENCHTIME), at full size (PUSHPULL_BENCH_BYTES: the
# package and tree sizes of the install and release benchmarks), tabulated
# into BENCHMARKS.md by tools/benchtable with the machine it ran on. One
# package at a time (-p 1), so no benchmark shares the machine with another.
BENCHTIME ?= 1x
PUSHPULL_BENCH_BYTES ?= 1073741824
# The nudge latency benchmark times one push per iteration: it runs
# NUDGE_PUSHES of them for its p50 and p99.
NUDGE_PUSHES ?= 100
bench: tools
	{ PUSHPULL_BENCH_BYTES=$(PUSHPULL_BENCH_BYTES) $(GO) test -run='^$$' -bench=. -skip=BenchmarkNudgeToRestarting \
		-benchtime=$(BENCHTIME) -p 1 -timeout 60m ./... && \
	  $(GO) test -run='^$$' -bench=BenchmarkNudgeToRestarting -benchtime=$(NUDGE_PUSHES)x -timeout 30m ./internal/pulld; } \
		| $(GO) run ./tools/benchtable -o BENCHMARKS.md

lint:
	$(call install-tool,staticcheck,honnef.co/go/tools/cmd/staticcheck,$(STATICCHECK_VERSION))
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

# pushpull-pulld, pushpull-pushui and pushpull-release as .deb files in
# dist/, each beside its tree in dist/trees/ (see tools/package).
package:
	$(GO) run ./tools/package -out dist

clean:
	rm -f $(addprefix bin/,$(CMDS))
	rm -f *.test *.out *.prof
	rm -rf dist

# Also removes the installed tools; the next `make test` reinstalls them.
distclean: clean
	rm -rf bin
