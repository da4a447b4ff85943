#!/usr/bin/env bash
# Crawl and alerts poller on one API application or two, under a 3,000/min simulated quota
# (docs/operations.md, "Sharing the quota"). Three runs, each against fresh simulators and
# state files: the crawl alone; the crawl beside a poller with the same client id (one
# application, one quota); the crawl beside a poller on a simulator of its own (two
# applications, two quotas). Prints each crawl's seconds and quota numbers.
#
#   make build && scripts/quota-share.sh
#
# Environment: BIN (default bin), ELASTICSEARCH_URL (default http://127.0.0.1:9200),
# MESSAGES per mailbox (default 600, 10 mailboxes), ALERTS per source (default 20000).
set -euo pipefail
BIN=${BIN:-bin}
ES=${ELASTICSEARCH_URL:-http://127.0.0.1:9200}
MESSAGES=${MESSAGES:-600}
ALERTS=${ALERTS:-20000}
D=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$D"' EXIT

startsim() { # name
  "$BIN/mimecast-sim" --addr 127.0.0.1:0 --ready-file "$D/$1.ready" --log-level warn --seed 1 \
    --mailboxes 10 --messages "$MESSAGES" --alerts "$ALERTS" --rate-limit 3000 >"$D/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $D/$1.ready ]] && return; sleep 0.1; done
  echo "simulator $1 did not start" >&2; exit 1
}
config() { # file sim index-prefix
  cat >"$D/$1" <<YAML
mimecast: {base_url: "http://$(cat "$D/$2.ready")", client_id: demo-client, client_secret: demo-secret}
messages: {start_date: "2020-01-01"}
elasticsearch: {addresses: ["$ES"], index_prefix: "$3"}
state: {path: "$D/$1.db"}
alerts: {poll_interval: 1s, page_size: 25, keep_low: true, sources: [attachment_protection, url_protection, impersonation, dlp]}
logging: {level: warn, format: json}
YAML
}
crawl() { # name config
  "$BIN/mimecrawl" crawl --config "$D/$2" --log-level info >"$D/$1.out" 2>&1 || true
  grep '"summary"' "$D/$1.out" | tail -1 | grep -o '"seconds":[0-9.]*\|"api_quota_calls":[0-9]*\|"api_rate_limited":[0-9]*\|"api_quota_wait_seconds":[0-9.]*' |
    tr '\n' ' ' | sed "s/^/$1: /"
  echo
}
poller() { # config
  "$BIN/mimecrawl" alerts --config "$D/$1" >"$D/$1.out" 2>&1 &
  pids+=($!)
  sleep 3
}
stopall() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); rm -f "$D"/*.ready; }

startsim a; config alone.yml a "qs$$-alone"; crawl alone alone.yml; stopall
startsim a; config poll1.yml a "qs$$-poll1"; config crawl1.yml a "qs$$-crawl1"; poller poll1.yml; crawl "one application" crawl1.yml; stopall
startsim a; startsim b; config poll2.yml b "qs$$-poll2"; config crawl2.yml a "qs$$-crawl2"; poller poll2.yml; crawl "two applications" crawl2.yml; stopall
# Remove what the runs created: indices, then index and component templates, by name
# (Elasticsearch refuses to delete indices by wildcard).
for i in $(curl -s "$ES/_cat/indices/qs$$-*?h=index"); do curl -s -XDELETE "$ES/$i" >/dev/null; done
for t in $(curl -s "$ES/_cat/templates/qs$$-*?h=name"); do curl -s -XDELETE "$ES/_index_template/$t" >/dev/null; done
for t in $(curl -s "$ES/_component_template/qs$$-*" | grep -o '"name":"qs[^"]*"' | cut -d'"' -f4); do
  curl -s -XDELETE "$ES/_component_template/$t" >/dev/null
done
