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

.PHONY: build test fmt-check vet demo es-start es-stop es-status bench

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
	  echo "== go vet"; $(GO) vet ./...; \
	  echo "== go test (Elasticsearch at $$ELASTICSEARCH_URL)"; $(GO) test $(GO_TEST_FLAGS) ./...; \
	  echo "== crawler suite against the simulator's shape variants"; \
	  MIMECRAWL_TEST_SHAPE_VARIANTS=1 $(GO) test -count=1 -timeout 10m ./crawler/)

fmt-check:
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.es/*' -not -path './bin/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi

vet:
	$(GO) vet ./...

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
