# GAIA's build. Tools are pinned here and installed into ./bin by `go install`
# from the Go module proxy; nothing else is downloaded.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
# The Go toolchain is pinned like every other tool: go1.26.8, the machine's,
# links standard-library code with known vulnerabilities (net/http, crypto/tls,
# crypto/x509, html/template, mime/multipart) that `make vulncheck` reports and
# go1.26.9 fixes. The go command fetches this toolchain once from the module
# proxy and caches it. GOTOOLCHAIN=local make … uses whatever go is installed.
GO_TOOLCHAIN ?= go1.26.11
export GOTOOLCHAIN ?= $(GO_TOOLCHAIN)

BUF_VERSION                 := v1.75.0
PROTOC_GEN_GO_VERSION       := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION  := v1.6.2
GRPC_GATEWAY_VERSION        := v2.33.0
STATICCHECK_VERSION         := v0.8.2
GRPCURL_VERSION             := v1.9.4
GOVULNCHECK_VERSION         := v1.9.0
# The Go vulnerability database as the module proxy serves it (the OSV files
# of golang.org/x/vulndb), so that govulncheck needs no access to vuln.go.dev.
# Move this pin forward to check against newer reports.
VULNDB_VERSION              := v0.0.0-20261105234957-e22db6528018

TOOLS := buf@$(BUF_VERSION) \
	protoc-gen-go@$(PROTOC_GEN_GO_VERSION) \
	protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION) \
	protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION) \
	staticcheck@$(STATICCHECK_VERSION) \
	grpcurl@$(GRPCURL_VERSION)
# A stamp per tool version, so that changing a version above reinstalls it.
TOOL_STAMPS := $(foreach t,$(TOOLS),$(BIN)/.stamp-$(subst @,-,$(t)))

BINARIES := coordinator taskqueue metrics dashboard gateway
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/gaia-platform/gaia/internal/buildinfo.Version=$(VERSION)

TEST_TIMEOUT ?= 30m
BENCH_TIME   ?= 2s
# The task queue's load generators run apart from the other benchmarks, right
# after River works the same number of jobs on the same PostgreSQL server
# (bench/river, a module of its own so that River stays out of go.mod).
QUEUE_BENCH_JOBS   ?= 50000
QUEUE_BENCHES      := ^BenchmarkTaskQueue(Throughput|BurnDown|ClaimLatency)$$
# The metrics service's load generators also run apart (one op is a whole
# measurement); METRICS_BENCH_SOAK is the memory run's length.
METRICS_BENCHES      := ^Benchmark(Metrics(IngestThroughput|IngestREST|Latency|Memory)|Detection(Latency|IdleLatency|Throughput|BacklogThroughput))$$
METRICS_BENCH_EVENTS ?= 200000
METRICS_BENCH_SOAK   ?= 5m
# The TypeScript client generated from the OpenAPI document.
TS_CLIENT := clients/typescript
# The teacher pipeline end to end (POST /v1/metrics → alert at 500 subscribed
# teachers) also runs apart; DASHBOARD_BENCH_SECONDS is each load's length.
DASHBOARD_BENCHES       := ^BenchmarkAlertLatency$$
DASHBOARD_BENCH_SECONDS ?= 10
# The coordinator against etcd: both three-node clusters in one process, same
# load generator (bench/etcd, a module of its own so that etcd stays out of
# go.mod). ETCD_BENCH_TIME repeats each op (1x: 2,048 calls, one beat per stream).
ETCD_BENCH_TIME    ?= 1x
ETCD_BENCH_STREAMS ?= 2000
BENCH_DATABASE_URL ?= $(or $(GAIA_TEST_DATABASE_URL),$(DATABASE_URL),postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)

.PHONY: all run test test-typescript chaos build generate generate-check docs-assets lint breaking tools bench bench-etcd bench-taskqueue bench-metrics bench-dashboard clean help
.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

run: build $(BIN)/.stamp-grpcurl-$(GRPCURL_VERSION) ## Run the whole system locally (gaia up): five services, single-node Raft, local PostgreSQL
	$(BIN)/gaia up

test: $(TS_CLIENT)/node_modules/.package-lock.json ## Run every test with the race detector (needs PostgreSQL, see README), then the TypeScript client's checks
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	@$(MAKE) --no-print-directory test-typescript

# The TypeScript client's npm packages are pinned by its package-lock.json and
# installed by npm ci, the only step that needs the npm registry; everything
# after runs offline.
$(TS_CLIENT)/node_modules/.package-lock.json: $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund

test-typescript: $(TS_CLIENT)/node_modules/.package-lock.json ## Validate openapi.json with swagger-parser and type-check the TypeScript client and its example app (tsc --strict)
	cd $(TS_CLIENT) && npm run --silent validate && npm run --silent typecheck

# The coordinator under faults (services/coordinator/service/chaos_test.go):
# three coordinator processes, kill -9, SIGSTOP and Raft partitions of the
# leader and of a follower, a lock history checked by porcupine, sessions that must never be
# failed. `make test` runs TestChaos for 1 minute and the frozen-leader
# regressions with 3 freezes each; this target runs CHAOS_DURATION and the
# regressions at the issue's counts (10 freezes of lease + 8 s, 20 freezes
# past a session's failure). The per-fault report is in the -v output.
CHAOS_DURATION ?= 10m
chaos: ## Run the coordinator chaos suite for CHAOS_DURATION (10m) and the frozen-leader regressions at full count; prints a per-fault report
	GAIA_CHAOS_DURATION=$(CHAOS_DURATION) GAIA_CHAOS_FULL=1 $(GO) test -race -count=1 -timeout 60m -v \
		-run '^(TestChaos|TestFrozenLeaderFailsNoSessionBeatingThroughFollower|TestFrozenLeaderAcksNoBeatOfFailedSession)$$' \
		./services/coordinator/service/

build: ## Build gaia and the five service binaries into ./bin
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/gaia ./cmd/gaia
	@for b in $(BINARIES); do \
		echo "$(GO) build -o $(BIN)/$$b ./services/$$b"; \
		$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$b ./services/$$b || exit 1; \
	done

generate: tools $(TS_CLIENT)/node_modules/.package-lock.json ## Regenerate Go, gRPC, gateway, the OpenAPI document and the TypeScript client's types
	$(GO) build -o $(BIN)/protoc-gen-gaia-openapi ./cmd/protoc-gen-gaia-openapi
	$(BIN)/buf generate
	cd $(TS_CLIENT) && npm run --silent generate

generate-check: generate ## Fail when regenerating changes anything
	@if [ -n "$$(git status --porcelain -- proto $(TS_CLIENT)/src)" ]; then \
		echo "make generate changed generated files; run it and commit the result:"; \
		git status --porcelain -- proto $(TS_CLIENT)/src; git --no-pager diff --stat -- proto $(TS_CLIENT)/src; exit 1; \
	fi

# The Swagger UI bundle the gateway embeds for /docs, from the npm version
# pinned in its package-lock.json; run after changing that version, and commit.
APIDOC := services/gateway/internal/apidoc
docs-assets: ## Refresh the embedded /docs bundle from npm (needs the npm registry; the build never does)
	cd $(APIDOC) && npm ci --no-audit --no-fund
	cp $(addprefix $(APIDOC)/node_modules/swagger-ui-dist/,swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE favicon-32x32.png) $(APIDOC)/assets/

lint: tools ## gofmt, go mod tidy -diff, go vet, buf lint, buf breaking, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\(\.gw\)\?\.go$$')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }
	$(GO) vet ./...
	$(BIN)/buf lint
	$(MAKE) --no-print-directory breaking
	$(BIN)/staticcheck ./...

# Breaking-change check (FILE rules) of proto/ against main; a no-op on main
# itself, it guards every branch that changes the API.
BREAKING_AGAINST ?= .git\#branch=main
breaking: tools ## buf breaking against main
	@if git rev-parse --verify -q main >/dev/null; then \
		$(BIN)/buf breaking --against '$(BREAKING_AGAINST)'; \
	else echo "buf breaking: no main branch here, skipped"; fi

# Every fuzz target, as package:Target. Each runs on its own for FUZZTIME
# (go test fuzzes one target at a time); what it finds lands in the package's
# testdata/fuzz, to be fixed and committed with a regression test. CI runs
# 5,000 inputs each in .ci/run (a count: see there); run longer with, say, make fuzz FUZZTIME=10m.
FUZZTIME ?= 1m
FUZZ_TARGETS := \
	./services/gateway/internal/rest:FuzzDecodeRequestBody \
	./services/gateway/internal/rest:FuzzDecodeQuery \
	./services/gateway/internal/rest:FuzzBodyDecoderMatchesGrpcGateway \
	./services/coordinator/internal/fsm:FuzzApplyCommand \
	./services/coordinator/internal/fsm:FuzzEncodingRoundTrip \
	./services/coordinator/internal/fsm:FuzzFencingToken \
	./services/taskqueue/internal/domain/task:FuzzParseClaimToken \
	./internal/window:FuzzWindowFromProto \
	./cmd/gaia:FuzzParseTimeWindow \
	./internal/reqfield:FuzzParsePageToken

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 1m)
	@missing=$$(for f in $$(git grep -hoE '^func Fuzz[A-Za-z0-9_]+' -- '*_test.go' | cut -d' ' -f2 | sort -u); do \
		printf '%s\n' $(FUZZ_TARGETS) | grep -qx ".*:$$f" || echo $$f; done); \
	if [ -n "$$missing" ]; then echo "fuzz targets missing from FUZZ_TARGETS in the Makefile:" $$missing; exit 1; fi
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# govulncheck against a database built, offline, from the pinned
# golang.org/x/vulndb module: indexdb (from the same module) turns its OSV
# files into the database layout govulncheck reads with -db file://.
VULNDB_DIR := $(BIN)/vulndb-$(VULNDB_VERSION)
vulncheck: $(BIN)/.stamp-govulncheck-$(GOVULNCHECK_VERSION) $(VULNDB_DIR)/index/db.json ## govulncheck with the vulnerability database from the module proxy
	$(BIN)/govulncheck -db file://$(VULNDB_DIR) ./...

$(VULNDB_DIR)/index/db.json:
	GOBIN=$(BIN) $(GO) install golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION)
	@osv=$$(cd "$$(mktemp -d)" && $(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
		test -d "$$osv/data/osv" || { echo "no OSV files in golang.org/x/vulndb@$(VULNDB_VERSION)"; exit 1; }; \
		rm -rf $(VULNDB_DIR) && $(BIN)/indexdb -vulns "$$osv/data/osv" -out $(VULNDB_DIR)

bench: ## Run the benchmarks and print their figures
	$(GO) test -run '^$$' -bench . -skip '$(QUEUE_BENCHES)|$(METRICS_BENCHES)|$(DASHBOARD_BENCHES)' -benchtime $(BENCH_TIME) -benchmem ./...
	$(GO) run ./services/coordinator/cmd/failoverbench
	@$(MAKE) --no-print-directory bench-etcd
	@$(MAKE) --no-print-directory bench-taskqueue
	@$(MAKE) --no-print-directory bench-metrics
	@$(MAKE) --no-print-directory bench-dashboard

# Each program makes its own database on the server and drops it after. Two
# modes, each system in both: stream (workers running while the jobs are
# inserted, timed from the first insert) and burn-down (every job inserted
# first, timed from the workers' start, as `river bench` times it). The last
# lines set the throughputs side by side.
bench-taskqueue: ## The task queue against River: the same jobs on the same PostgreSQL, streamed and burnt down
	@set -o pipefail; out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	echo "== River: $(QUEUE_BENCH_JOBS) jobs (bench/river), stream then burn-down; load average $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	(cd bench/river && $(GO) build -o "$$out/riverbench" .) || exit 1; \
	"$$out/riverbench" -mode stream -jobs $(QUEUE_BENCH_JOBS) -db '$(BENCH_DATABASE_URL)' | tee "$$out/river" || exit 1; \
	"$$out/riverbench" -mode burndown -jobs $(QUEUE_BENCH_JOBS) -db '$(BENCH_DATABASE_URL)' | tee -a "$$out/river" || exit 1; \
	echo "== GAIA: $(QUEUE_BENCH_JOBS) jobs streamed, burnt down, then claim latency at a moderate load"; \
	GAIA_BENCH_QUEUE_JOBS=$(QUEUE_BENCH_JOBS) GAIA_TEST_DATABASE_URL='$(BENCH_DATABASE_URL)' \
		$(GO) test -run '^$$' -bench '$(QUEUE_BENCHES)' -benchtime 1x ./services/taskqueue/service | tee "$$out/gaia" || exit 1; \
	echo "== load average after: $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	cat "$$out/river" "$$out/gaia" | awk -v jobs=$(QUEUE_BENCH_JOBS) ' \
		function metric(unit,   i) { for (i = 2; i < NF; i++) if ($$(i+1) == unit) return $$i; return "" } \
		$$1 == "river-stream-jobs/s" { river["stream"] = $$2 } \
		$$1 == "river-burndown-jobs/s" { river["burndown"] = $$2 } \
		/^BenchmarkTaskQueueThroughput/ { gaia["stream"] = metric("jobs/s") } \
		/^BenchmarkTaskQueueBurnDown/ { gaia["burndown"] = metric("jobs/s") } \
		/^BenchmarkTaskQueueClaimLatency/ { p50 = metric("claim-p50-ms"); p99 = metric("claim-p99-ms"); \
			h50 = metric("health-p50-ms"); h99 = metric("health-p99-ms"); rate = metric("offered-jobs/s") } \
		function line(mode, what) { if (river[mode] == "" || gaia[mode] == "") { print "task queue comparison, " what ": a figure is missing"; bad = 1; return } \
			printf "Task queue, %s, %d jobs each on one PostgreSQL: GAIA %.0f jobs/s, River %.0f jobs/s, GAIA/River %.2f\n", what, jobs, gaia[mode], river[mode], gaia[mode] / river[mode] } \
		END { line("stream", "stream"); line("burndown", "burn-down"); \
			if (p50 != "") printf "Task queue claim latency at %d jobs/s: p50 %.2f ms, p99 %.2f ms (health check p50 %.2f ms, p99 %.2f ms)\n", rate, p50, p99, h50, h99; \
			exit bad }'

# The last lines set GAIA's figures beside etcd's from the same run. The
# benchmark's full output (the clusters' warnings included) stays in
# bench/etcd/last-run.txt.
bench-etcd: ## The coordinator against etcd: puts, mutex cycles and keep-alives, three nodes each, in one run
	@set -o pipefail; out=bench/etcd/last-run.txt; \
	echo "== GAIA's coordinator and etcd, three nodes each (bench/etcd); load average $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	(cd bench/etcd && $(GO) test -run '^$$' -bench . -benchtime $(ETCD_BENCH_TIME) -timeout 30m -streams $(ETCD_BENCH_STREAMS)) > "$$out" 2>&1; \
	rc=$$?; grep -E '^(Benchmark|--- FAIL|FAIL|ok|PASS)|bench_test.go' "$$out"; [ $$rc -eq 0 ] || exit $$rc; \
	echo "== load average after: $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	awk ' \
		function metric(unit,   i) { for (i = 2; i < NF; i++) if ($$(i+1) == unit) return $$i; return "" } \
		/^BenchmarkVersusEtcd\// { split($$1, p, "/"); sys = p[3]; sub(/-[0-9]+$$/, "", sys); sub(/^system=/, "", sys); \
			ops[p[2], sys] = metric("ops/s"); p99[p[2], sys] = metric("p99-ms"); el[p[2], sys] = metric("elections") } \
		function line(w, what) { if (ops[w, "gaia"] == "" || ops[w, "etcd"] == "") { print what ": a figure is missing"; bad = 1; return } \
			printf "%s: GAIA %.0f/s, etcd %.0f/s, GAIA/etcd %.2f (p99 %.1f / %.1f ms; elections %d / %d)\n", what, \
				ops[w, "gaia"], ops[w, "etcd"], ops[w, "gaia"] / ops[w, "etcd"], p99[w, "gaia"], p99[w, "etcd"], el[w, "gaia"], el[w, "etcd"] } \
		END { line("put", "Registrations against etcd puts"); line("mutex", "AcquireLock+ReleaseLock against etcd mutex Lock+Unlock (cycles)"); \
			line("keepalive", "Heartbeats against etcd lease keep-alives"); exit bad }' "$$out"

# Metrics ingest: gRPC batches against a raw pgx CopyFrom into the same table,
# REST through the gateway, latency beside a bare gRPC round trip, and the
# service's memory over METRICS_BENCH_SOAK. The last lines sum it up.
bench-metrics: ## Metrics ingest against raw COPY, REST group commit, latency and memory
	@set -o pipefail; out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	GAIA_BENCH_METRICS_EVENTS=$(METRICS_BENCH_EVENTS) GAIA_BENCH_METRICS_SOAK=$(METRICS_BENCH_SOAK) GAIA_TEST_DATABASE_URL='$(BENCH_DATABASE_URL)' \
		$(GO) test -run '^$$' -bench '$(METRICS_BENCHES)' -benchtime 1x -timeout 60m ./services/metrics/service | tee "$$out" || exit 1; \
	awk ' \
		function metric(unit,   i) { for (i = 2; i < NF; i++) if ($$(i+1) == unit) return $$i; return "" } \
		/^BenchmarkMetricsIngestThroughput/ { printf "Metrics ingest, %d events in batches of 100-1,000 over gRPC: %.0f events/s; raw pgx CopyFrom into the same table %.0f events/s; ratio %.2f (%.0f events a commit)\n", metric("events"), metric("events/s"), metric("raw-copy-events/s"), metric("ratio-to-raw-copy"), metric("events/commit") } \
		/^BenchmarkMetricsIngestREST/ { printf "Metrics REST from 200 clients: %.0f events/s in 1-event requests, %.0f events/s in 10-event requests (%.1f requests a commit)\n", metric("rest-1-events/s"), metric("rest-10-events/s"), metric("requests/commit") } \
		/^BenchmarkMetricsLatency/ { printf "Metrics RecordMetrics at %d events/s in batches of 10: p50 %.2f ms, p99 %.2f ms (bare gRPC p50 %.2f ms, p99 %.2f ms; in the service, queued p99 %.1f ms, write and commit p99 %.1f ms)\n", metric("offered-events/s"), metric("record-p50-ms"), metric("record-p99-ms"), metric("grpc-p50-ms"), metric("grpc-p99-ms"), metric("wait-p99-ms"), metric("write-p99-ms") } \
		/^BenchmarkDetectionLatency/ { printf "Detection at %d events/s: commit to WatchFrustrationEvents p50 %.0f ms, p99 %.0f ms over %d probes (200 ms report delay included; RecordMetrics p99 %.2f ms in the same run)\n", metric("offered-events/s"), metric("detect-p50-ms"), metric("detect-p99-ms"), metric("probes"), metric("record-p99-ms") } \
		/^BenchmarkDetectionIdleLatency/ { printf "Idle at %d events/s: reported after its timeout p50 %.0f ms, p99 %.0f ms, at worst %.0f ms over %d quiet students (RecordMetrics p99 %.2f ms in the same run)\n", metric("offered-events/s"), metric("idle-late-p50-ms"), metric("idle-late-p99-ms"), metric("idle-late-max-ms"), metric("probes"), metric("record-p99-ms") } \
		/^BenchmarkDetectionThroughput/ { printf "Detector throughput over %d events: %.0f events/s judged against %.0f events/s ingested; ratio %.2f\n", metric("events"), metric("detector-events/s"), metric("ingest-events/s"), metric("ratio-to-ingest") } \
		/^BenchmarkDetectionBacklogThroughput/ { printf "Detector capacity from a standing backlog of %d events: %.0f events/s judged against %.0f events/s ingested with the detector off; ratio %.2f\n", metric("events"), metric("detector-events/s"), metric("ingest-events/s"), metric("ratio-to-ingest") } \
		/^BenchmarkMetricsMemory/ { printf "Metrics service memory over %.0f s: RSS %.1f MB after warm-up, %.1f MB at the end, %.1f MB at most\n", metric("seconds"), metric("rss-after-warmup-MB"), metric("rss-end-MB"), metric("rss-max-MB") }' "$$out"

# The teacher pipeline: rage clicks posted to POST /v1/metrics until their alert
# reaches each of 5 subscribed teachers (500 in all), with no other load (the
# baseline) and at 1,000 and 10,000 background events/s.
bench-dashboard: ## Detection to teacher: end-to-end alert latency at 500 subscribed teachers
	@set -o pipefail; out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	GAIA_BENCH_ALERT_SECONDS=$(DASHBOARD_BENCH_SECONDS) GAIA_TEST_DATABASE_URL='$(BENCH_DATABASE_URL)' \
		$(GO) test -run '^$$' -bench '$(DASHBOARD_BENCHES)' -benchtime 1x -timeout 30m ./services/gateway/service | tee "$$out" || exit 1; \
	awk ' \
		function metric(unit,   i) { for (i = 2; i < NF; i++) if ($$(i+1) == unit) return $$i; return "" } \
		/^BenchmarkAlertLatency/ { b50 = metric("baseline-p50-ms"); b99 = metric("baseline-p99-ms"); \
			printf "Alert latency, POST /v1/metrics to 500 subscribed teachers: no load p50 %.0f ms, p99 %.0f ms\n", b50, b99; \
			printf "  at %.0f events/s: p50 %.0f ms, p99 %.0f ms (%.2fx / %.2fx the no-load figures), %d missed\n", metric("at-1000-events/s"), metric("at-1000-p50-ms"), metric("at-1000-p99-ms"), metric("at-1000-p50-ms") / b50, metric("at-1000-p99-ms") / b99, metric("at-1000-missed"); \
			printf "  at %.0f events/s: p50 %.0f ms, p99 %.0f ms (%.2fx / %.2fx the no-load figures), %d missed\n", metric("at-10000-events/s"), metric("at-10000-p50-ms"), metric("at-10000-p99-ms"), metric("at-10000-p50-ms") / b50, metric("at-10000-p99-ms") / b99, metric("at-10000-missed") }' "$$out"

tools: $(TOOL_STAMPS) ## Install the pinned tools into ./bin

$(BIN)/.stamp-buf-%:
	GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$*
	@rm -f $(BIN)/.stamp-buf-* && touch $@
$(BIN)/.stamp-protoc-gen-go-v%:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v$*
	@rm -f $(BIN)/.stamp-protoc-gen-go-v* && touch $@
$(BIN)/.stamp-protoc-gen-go-grpc-%:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$*
	@rm -f $(BIN)/.stamp-protoc-gen-go-grpc-* && touch $@
$(BIN)/.stamp-protoc-gen-grpc-gateway-%:
	GOBIN=$(BIN) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$*
	@rm -f $(BIN)/.stamp-protoc-gen-grpc-gateway-* && touch $@
$(BIN)/.stamp-staticcheck-%:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$*
	@rm -f $(BIN)/.stamp-staticcheck-* && touch $@
$(BIN)/.stamp-govulncheck-%:
	GOBIN=$(BIN) $(GO) install golang.org/x/vuln/cmd/govulncheck@$*
	@rm -f $(BIN)/.stamp-govulncheck-* && touch $@
$(BIN)/.stamp-grpcurl-%:
	GOBIN=$(BIN) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$*
	@rm -f $(BIN)/.stamp-grpcurl-* && touch $@

clean: ## Remove ./bin and local data
	rm -rf $(BIN) data
