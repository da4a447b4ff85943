#!/usr/bin/env bash
# Benchmarks: the headline table of the performance goals (calls per message, throughput
# with added latency against Little's bound, crawler/Elasticsearch CPU per document, peak RSS
# growth, the rate-limited crawl, the crawl with sporadic 429s), then as information the
# crawler against the ceiling of this machine and Elasticsearch, scaling, incremental cost,
# and the Go benchmarks of the hot paths. docs/performance.md explains the numbers.
#
#   scripts/bench.sh            # quick mode, about 6 minutes; not for the goals
#   BENCH_MODE=full scripts/bench.sh   # medians of three or five runs, about an hour on 2 CPUs
#
# Environment:
#   BENCH_MODE        quick (default) or full
#   BENCH_ARGS        extra flags for mimecrawl-bench (e.g. "--only ceiling --pairs 5")
#   BENCH_OUT         output directory (default bench)
#   BENCH_HOTPATHS    0 skips the Go benchmarks
#   BENCH_ES_PORT     port of the Elasticsearch node started for the benchmark (default 9260)
#   ELASTICSEARCH_URL use this cluster instead of starting one (it must be otherwise idle for
#                     the numbers to mean anything)
#
# Without ELASTICSEARCH_URL a node of its own is started on BENCH_ES_PORT, so that tests run
# against the usual port do not land in the timings, and stopped at the end if this script
# started it.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

mode=${BENCH_MODE:-quick}
out=${BENCH_OUT:-bench}
GO=${GO:-go}
case $mode in
  quick) count=3; benchtime=300ms; alerts_backlog=5000 ;;
  full) count=6; benchtime=1s; alerts_backlog=100000 ;;
  *) echo "bench: BENCH_MODE=$mode: want quick or full" >&2; exit 2 ;;
esac

log() { printf 'bench: %s\n' "$*" >&2; }

echo "== build"
$GO build -o bin/ ./cmd/...

if [[ -z ${ELASTICSEARCH_URL:-} ]]; then
  export ES_PORT=${BENCH_ES_PORT:-9260}
  if ! scripts/elasticsearch.sh status >/dev/null 2>&1; then
    # The node is stopped as this script started it: without ELASTICSEARCH_URL, which is set
    # below and would make the stop leave the cluster alone.
    trap 'rc=$?; env -u ELASTICSEARCH_URL scripts/elasticsearch.sh stop || true; exit $rc' EXIT
    trap 'exit 130' INT TERM
  fi
  ELASTICSEARCH_URL=$(scripts/elasticsearch.sh start)
  export ELASTICSEARCH_URL
fi
log "Elasticsearch at $ELASTICSEARCH_URL, mode $mode"
mkdir -p "$out"

hot_args=()
if [[ ${BENCH_HOTPATHS:-1} != 0 ]]; then
  echo "== hot paths (go test -bench, -count $count, -benchtime $benchtime)"
  # One package at a time and nothing else running, so that the benchmarks do not compete
  # with each other for the two cores. The output is what benchstat reads.
  {
    for pkg in ./crawler/body ./crawler ./integration/mimecast ./integration/mimecast/simulator ./index; do
      $GO test -run '^$' -bench . -benchmem -count "$count" -benchtime "$benchtime" "$pkg" || echo "FAIL $pkg"
    done
  } | tee "$out/hotpaths.txt" | grep -E '^(Benchmark|ok|FAIL|---)' || true
  hot_args=(--hotpaths "$out/hotpaths.txt")
fi

echo "== alerts poller (backlog of ${ALERTS_BENCH_BACKLOG:-$alerts_backlog} events and a tenth of it)"
# alerts/s end to end, API calls per alert, heap added by the pass (flat with the backlog).
ALERTS_BENCH_BACKLOG=${ALERTS_BENCH_BACKLOG:-$alerts_backlog} \
  $GO test -run '^$' -bench BenchmarkPollBacklog -benchtime 1x ./alerts | tee "$out/alerts.txt" | grep -E '^(Benchmark|ok|FAIL)' || true

echo "== end to end (mimecrawl-bench --mode $mode)"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
bin/mimecrawl-bench --mode "$mode" --es "$ELASTICSEARCH_URL" --bin bin --out "$out" "${hot_args[@]}" --alerts "$out/alerts.txt" ${BENCH_ARGS:-}
echo
cat "$out/results.md"
