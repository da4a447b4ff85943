#!/usr/bin/env bash
# The main job, end to end on one machine: a local Elasticsearch (scripts/elasticsearch.sh),
# the Mimecast simulator with a seeded archive and security alerts, `mimecrawl check`, then
# `mimecrawl crawl`, a sample search, then `mimecrawl alerts --once` and what it indexed. Elasticsearch is left running so the index can be explored;
# `make es-stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

SIM_ADDR=${SIM_ADDR:-127.0.0.1:8089}
SIM_MAILBOXES=${SIM_MAILBOXES:-12}
SIM_MESSAGES=${SIM_MESSAGES:-150}
SIM_ALERTS=${SIM_ALERTS:-200}
CONFIG=${CONFIG:-examples/demo.yaml}

say() { printf '\n== %s\n' "$*"; }

say "building"
mkdir -p bin .cache/demo
go build -o bin/ ./cmd/...

say "starting Elasticsearch"
ES_URL=$(scripts/elasticsearch.sh start | tail -n 1)
export MIMECRAWL_ELASTICSEARCH_ADDRESSES="$ES_URL"
echo "Elasticsearch at $ES_URL"

say "starting the Mimecast simulator ($SIM_MAILBOXES mailboxes x $SIM_MESSAGES messages, $SIM_ALERTS alerts per source)"
rm -f .cache/demo/sim.addr
bin/mimecast-sim --addr "$SIM_ADDR" --seed 7 --domains 2 --mailboxes "$SIM_MAILBOXES" \
  --messages "$SIM_MESSAGES" --alerts "$SIM_ALERTS" --ready-file .cache/demo/sim.addr --log-level warn &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s .cache/demo/sim.addr ] && break; sleep 0.1; done
[ -s .cache/demo/sim.addr ] || { echo "simulator did not start" >&2; exit 1; }
export MIMECRAWL_MIMECAST_BASE_URL="http://$(cat .cache/demo/sim.addr)"

PREFIX=$(sed -n 's/^ *index_prefix: *//p' "$CONFIG" | tr -d '"' | head -n 1)
NAMESPACE=$(sed -n 's/^ *namespace: *//p' "$CONFIG" | tr -d '"' | head -n 1)
STREAM=logs-mimecrawl.alerts-${NAMESPACE:-default}
say "starting over: removing the demo's state files and indices ${PREFIX}-messages, ${PREFIX}-attachments, ${PREFIX}-alert-groups and the data stream $STREAM"
rm -f .cache/demo/mimecrawl.db .cache/demo/mimecrawl.db.alerts
# The names are aliases of versioned indices (${PREFIX}-messages-000001, ...), and Elasticsearch
# deletes neither aliases nor wildcards: list the concrete indices behind them and delete those.
indices=$(curl -s "$ES_URL/_cat/indices/${PREFIX}-messages*,${PREFIX}-attachments*,${PREFIX}-alerts*,${PREFIX}-alert-groups*?h=index" | paste -sd, -)
if [[ -n $indices ]]; then
  curl -s -o /dev/null -X DELETE "$ES_URL/${indices}?ignore_unavailable=true"
fi
# A cluster without the data stream API (Elastic's integration-test distribution) keeps the
# stream: the alerts of an earlier demo are then found there and not written again.
curl -s -o /dev/null -X DELETE "$ES_URL/_data_stream/$STREAM" || true

say "mimecrawl check"
bin/mimecrawl check --config "$CONFIG"

say "mimecrawl crawl (first run: everything)"
bin/mimecrawl crawl --config "$CONFIG" 2> .cache/demo/crawl.log || {
  status=$?; echo "crawl exited $status; log in .cache/demo/crawl.log" >&2; exit "$status"; }

say "mimecrawl crawl (second run: nothing new, so nothing is fetched)"
bin/mimecrawl crawl --config "$CONFIG" 2> .cache/demo/crawl2.log

say "top senders in ${PREFIX}-messages"
curl -s -H 'Content-Type: application/json' "$ES_URL/${PREFIX}-messages/_search?size=0&filter_path=aggregations.top.buckets" \
  -d '{"aggs":{"top":{"terms":{"field":"email.from.address","size":5}}}}'
echo
say "full-text search for \"invoice\" (subject, body, attachment text)"
curl -s -H 'Content-Type: application/json' "$ES_URL/${PREFIX}-*/_search?size=3&filter_path=hits.total.value,hits.hits._index,hits.hits._source.mimecast.mailbox,hits.hits._source.email.subject,hits.hits._source.email.attachments.file.name" \
  -d '{"query":{"multi_match":{"query":"invoice","fields":["email.subject.text","mimecast.body","email.attachments.file.name","mimecast.content","mimecast.attachment.content"]}}}'
echo
say "mimecrawl alerts --once (security alerts: one pass over every source)"
bin/mimecrawl alerts --once --config "$CONFIG" 2> .cache/demo/alerts.log || {
  status=$?; echo "alerts exited $status; log in .cache/demo/alerts.log" >&2; exit "$status"; }

say "alerts in the data stream $STREAM by priority (low ones are not indexed by default)"
curl -s -X POST "$ES_URL/$STREAM/_refresh" -o /dev/null
curl -s -H 'Content-Type: application/json' "$ES_URL/$STREAM/_search?size=0&filter_path=hits.total.value,aggregations.priority.buckets" \
  -d '{"track_total_hits":true,"aggs":{"priority":{"terms":{"field":"mimecast.priority"}}}}'
echo
say "the alert group with the most recipients in ${PREFIX}-alert-groups"
curl -s -X POST "$ES_URL/${PREFIX}-alert-groups/_refresh" -o /dev/null
curl -s -H 'Content-Type: application/json' "$ES_URL/${PREFIX}-alert-groups/_search?size=1&filter_path=hits.hits._source.key,hits.hits._source.file_names,hits.hits._source.recipient_count,hits.hits._source.alert_count,hits.hits._source.priority,hits.hits._source.first_seen,hits.hits._source.last_seen" \
  -d '{"sort":[{"recipient_count":"desc"}]}'
echo
say "done: Elasticsearch is still running at $ES_URL (make es-stop to stop it)"
