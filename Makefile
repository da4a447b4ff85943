# Developer and CI entry points. `make test` is the one command that runs every check.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO ?= go
ES := scripts/elasticsearch.sh
# The whole suite must end well within CI's 30 minutes; a hung test fails here instead.
GO_TEST_FLAGS ?= -race -count=1 -timeout 15m

# with_es runs its argument with ELASTICSEARCH_URL pointing at a healthy cluster: the one already
# in the environment, the one already answering on ES_PORT (left running), or one started here
# and stopped afterwards, also when the command fails or is interrupted.
define with_es
if [ -z "$${ELASTICSEARCH_URL:-}" ]; then \
  if ! $(ES) status >/dev/null 2>&1; then \
    trap 'rc=$$?; env -u ELASTICSEARCH_URL $(ES) stop || true; exit $$rc' EXIT; \
    trap 'exit 130' INT TERM; \
  fi; \
  ELASTICSEARCH_URL=$$($(ES) start); export ELASTICSEARCH_URL; \
fi; \
$(1)
endef

# The second Elasticsearch major. `make test` runs the whole suite on the cluster above (8.x
# unless ELASTICSEARCH_URL says otherwise) and then, through test-es9, the end-to-end suites
# (crawl, alerts, upgrade, kill-and-resume) on this one. ES9_URL names a running 9.x cluster
# to use instead; ES9=0 leaves the second major out of `make test`, and says so.
ES9 ?= 1
ES9_VERSION ?= 9.2.0
ES9_PORT ?= 9201
# Without -race: the race detector checks our code, the same on both majors, and the whole
# suite runs with it on the first; here it would double the time.
ES9_TEST_FLAGS ?= -count=1 -timeout 15m
ES9_PACKAGES := ./crawler/ ./alerts/ ./index/
ES9_CMD_TESTS := Kill|Upgrade|Alerts

.PHONY: build test test-es9 fmt-check vet demo es-start es-stop es-status bench

build:
	$(GO) build -o bin/ ./cmd/...

test:
	@$(call with_es, \
	  echo "== test tools (nginx for the TLS tests, a Pushgateway for the metrics tests)"; \
	  scripts/nginx.sh >/dev/null || echo "nginx is missing and could not be installed: the TLS tests skip (CI fails them)"; \
	  MIMECRAWL_PUSHGATEWAY=$${MIMECRAWL_PUSHGATEWAY:-$$(scripts/pushgateway.sh)}; export MIMECRAWL_PUSHGATEWAY; \
	  echo "== corpus of real attachments (Debian packages, pdftotext as the reference)"; \
	  MIMECRAWL_CORPUS=$${MIMECRAWL_CORPUS:-$$(scripts/corpus.sh || true)}; export MIMECRAWL_CORPUS; \
	  [ -n "$$MIMECRAWL_CORPUS" ] || echo "the corpus could not be built: the recall test skips (CI fails it)"; \
	  echo "== gofmt"; $(MAKE) --no-print-directory fmt-check; \
	  echo "== go vet"; $(GO) vet ./...; (cd deploy && $(GO) vet ./...); \
	  echo "== go test (Elasticsearch at $$ELASTICSEARCH_URL)"; $(GO) test $(GO_TEST_FLAGS) ./...; \
	  echo "== manifest tests (module deploy)"; (cd deploy && $(GO) test $(GO_TEST_FLAGS) ./...); \
	  echo "== crawler suite against the simulator's shape variants"; \
	  MIMECRAWL_TEST_SHAPE_VARIANTS=1 $(GO) test -count=1 -timeout 10m ./crawler/; \
	  if [ "$(ES9)" = 0 ]; then echo "== Elasticsearch $(ES9_VERSION): not tested (ES9=0)"; \
	  else $(MAKE) --no-print-directory test-es9; fi)

# test-es9 runs the end-to-end suites against Elasticsearch $(ES9_VERSION): the cluster at ES9_URL,
# the one already answering on ES9_PORT (left running), or one started here from Maven Central
# and stopped afterwards, also when a test fails or the run is interrupted. The 8.x node is
# never touched: every call to the script names the port and version of the second node.
test-es9:
	@es9() { env -u ELASTICSEARCH_URL ES_VERSION=$(ES9_VERSION) ES_PORT=$(ES9_PORT) $(ES) "$$@"; }; \
	if [ -n "$${ES9_URL:-}" ]; then url=$$ES9_URL; \
	else \
	  if ! es9 status >/dev/null 2>&1; then \
	    trap 'rc=$$?; es9 stop || true; exit $$rc' EXIT; \
	    trap 'exit 130' INT TERM; \
	  fi; \
	  url=$$(es9 start); \
	fi; \
	version=$$(curl -fsS --max-time 10 "$${url%/}/_nodes/_local?filter_path=nodes.*.version" | sed -nE 's/.*"version":"([^"]*)".*/\1/p'); \
	case $$version in 9.*) ;; *) echo "test-es9: the cluster on port $(ES9_PORT) or at ES9_URL runs version '$$version', not 9.x" >&2; exit 1;; esac; \
	echo "== end-to-end suites on Elasticsearch $$version at $$(sed -E 's#//[^/@]*@#//***@#' <<<"$$url")"; \
	MIMECRAWL_PUSHGATEWAY=$${MIMECRAWL_PUSHGATEWAY:-$$(scripts/pushgateway.sh)}; export MIMECRAWL_PUSHGATEWAY; \
	ELASTICSEARCH_URL=$$url $(GO) test $(ES9_TEST_FLAGS) $(ES9_PACKAGES); \
	ELASTICSEARCH_URL=$$url $(GO) test $(ES9_TEST_FLAGS) ./cmd/mimecrawl/ -run '$(ES9_CMD_TESTS)'

fmt-check:
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.es/*' -not -path './bin/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi

vet:
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...

# The demo script starts what it needs and explains each step.
demo:
	scripts/demo.sh

es-start:
	@$(ES) start

es-stop:
	@$(ES) stop

es-status:
	@$(ES) status

bench:
	@if [ -x scripts/bench.sh ]; then scripts/bench.sh; \
	else $(call with_es, $(GO) test -run '^$$' -bench . -benchmem ./...); fi
