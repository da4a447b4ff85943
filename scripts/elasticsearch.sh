#!/usr/bin/env bash
# Local single-node Elasticsearch 8 or 9 for tests, CI and the demo.
#
#   scripts/elasticsearch.sh start|stop|status|url
#
# Two versions side by side (CI runs the end-to-end suites on 9.x beside 8.x, see make test-es9):
#   ES_VERSION=9.2.0 ES_PORT=9201 scripts/elasticsearch.sh start
#
# Where Elasticsearch comes from, first match wins:
#   1. ELASTICSEARCH_URL is set: that cluster is used as is. start only waits for it to be
#      healthy; stop never touches it.
#   2. A working Docker engine: the official image, in a container named mimecrawl-es-<port>.
#   3. Otherwise Elastic's integration-test distribution from Maven Central, fetched with mvn
#      (cached in the local Maven repository), unpacked once into .es/ at the repository root and
#      run with the machine's Java as a non-root user.
#
# Environment:
#   ES_VERSION         Elasticsearch version (default 8.19.21); 8.x and 9.x work
#   ES_PORT            HTTP port on 127.0.0.1 (default 9200)
#   ES_JAVA_OPTS       JVM options (default "-Xms1g -Xmx1g")
#   ES_START_TIMEOUT   seconds to wait for a healthy cluster (default 120)
#   ES_DIR             where the distribution and node data live (default <repo>/.es)
#   ES_USER            user that runs Elasticsearch when this script runs as root
#                      (default mimecrawl-es; created if missing)
#   ES_JAVA_HOME       Java for the Maven distribution: 17 or newer for 8.x, 21 or newer for
#                      9.x; an older one is an error. Unset: JAVA_HOME if it is new enough,
#                      else the oldest such Java in /usr/lib/jvm (OpenJDK 17 for 8.x), else
#                      the java on PATH; for 9.x on a machine with none, this script installs
#                      openjdk-21-jre-headless (or 25) with apt-get when the machine's sources
#                      have it and it runs as root.
#   MAVEN_REPO         local Maven repository (default ~/.m2/repository)
#
# A cluster that already answers on the port is reused, never restarted; stop only ends a node
# this script started (found by its pid file or container), so a shared cluster is safe.
#
# Exit status of status: 0 when a healthy cluster answers, 3 when not.
set -euo pipefail

ES_VERSION=${ES_VERSION:-8.19.21}
ES_PORT=${ES_PORT:-9200}
ES_JAVA_OPTS=${ES_JAVA_OPTS:--Xms1g -Xmx1g}
ES_START_TIMEOUT=${ES_START_TIMEOUT:-120}
ES_USER=${ES_USER:-mimecrawl-es}
ES_IMAGE=docker.elastic.co/elasticsearch/elasticsearch:${ES_VERSION}
MAVEN_REPO=${MAVEN_REPO:-$HOME/.m2/repository}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
es_dir=${ES_DIR:-$repo_root/.es}
es_home=$es_dir/elasticsearch-$ES_VERSION
# One directory per port so that two nodes (say, a developer's and a test's) never share data.
node_dir=$es_dir/node-$ES_PORT
pid_file=$node_dir/pid
container=mimecrawl-es-$ES_PORT
local_url=http://127.0.0.1:$ES_PORT

log() { printf 'elasticsearch: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# redact hides credentials embedded in a URL before it is printed in a message.
redact() { sed -E 's#//[^/@]*@#//***@#' <<<"$1"; }

url() {
  if [[ -n ${ELASTICSEARCH_URL:-} ]]; then
    printf '%s\n' "$ELASTICSEARCH_URL"
  else
    printf '%s\n' "$local_url"
  fi
}

# health prints the cluster status (green, yellow or red) of the cluster at $1, or fails.
health() {
  local body
  body=$(curl -fsS --max-time 5 "${1%/}/_cluster/health" 2>/dev/null) || return 1
  sed -nE 's/.*"status":"(green|yellow|red)".*/\1/p' <<<"$body" | grep . || return 1
}

healthy() {
  local s
  s=$(health "$1") || return 1
  [[ $s == green || $s == yellow ]]
}

# wait_healthy polls until the cluster at $1 is green or yellow; on timeout it runs $2 (if any)
# to show why, and fails.
wait_healthy() {
  local target=$1 on_timeout=${2:-} deadline=$((SECONDS + ES_START_TIMEOUT))
  until healthy "$target"; do
    if ((SECONDS >= deadline)); then
      log "no healthy cluster at $(redact "$target") after ${ES_START_TIMEOUT}s"
      [[ -n $on_timeout ]] && $on_timeout
      return 1
    fi
    # A node we started that has died will never answer: say so now rather than at the deadline.
    if [[ -f $pid_file ]] && ! node_alive; then
      log "the node exited during start-up"
      [[ -n $on_timeout ]] && $on_timeout
      return 1
    fi
    sleep 1
  done
}

docker_works() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

container_exists() { docker_works && docker inspect "$container" >/dev/null 2>&1; }

# node_pid prints the pid from our pid file if that process is still our Elasticsearch. The
# command-line check guards against a stale file whose pid now belongs to something else.
node_pid() {
  [[ -f $pid_file ]] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$pid_file")
  [[ -n $pid ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-Des.path.home=$es_home" || return 1
  printf '%s\n' "$pid"
}

node_alive() { node_pid >/dev/null; }

show_log_tail() {
  local f
  for f in "$node_dir/logs/startup.log" "$node_dir/logs/elasticsearch.log"; do
    [[ -s $f ]] || continue
    log "last lines of $f:"
    # Long lines (stack traces, feature lists) are cut so the reason stays visible.
    tail -n 30 "$f" | cut -c1-400 >&2
  done
}

# java_min prints the oldest Java major that ES_VERSION runs on: Elasticsearch 9 needs 21.
java_min() {
  case ${ES_VERSION%%.*} in
    8) echo 17 ;;
    *) echo 21 ;;
  esac
}

# java_major prints the major version of the Java installed at $1 (from its release file, else
# by asking it), or fails.
java_major() {
  local v=
  [[ -x $1/bin/java ]] || return 1
  if [[ -r $1/release ]]; then
    v=$(sed -nE 's/^JAVA_VERSION="([0-9]+).*/\1/p' "$1/release")
  fi
  if [[ -z $v ]]; then
    v=$("$1/bin/java" -version 2>&1 | sed -nE '1s/.*version "([0-9]+).*/\1/p')
  fi
  [[ -n $v ]] || return 1
  printf '%s\n' "$v"
}

# find_java prints the home of the oldest installed Java that is at least java_min: the one
# closest to what Elasticsearch is tested with. OpenJDK 17 is preferred for 8.x as before.
find_java() {
  local need best= best_v= d v
  need=$(java_min)
  for d in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/*/; do
    d=${d%/}
    [[ -L $d ]] && continue # Debian's aliases point at the directories listed anyway
    v=$(java_major "$d") || continue
    ((v >= need)) || continue
    if [[ -z $best_v ]] || ((v < best_v)); then best=$d best_v=$v; fi
  done
  if [[ -z $best ]] && command -v java >/dev/null 2>&1; then
    d=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
    if v=$(java_major "$d") && ((v >= need)); then best=$d; fi
  fi
  [[ -n $best ]] || return 1
  printf '%s\n' "$best"
}

# install_java installs a Java that Elasticsearch $ES_VERSION runs on from the machine's apt
# sources, if they have one and we may. Debian 12 has no Java 21; machines of this project's
# kind carry a Temurin JDK beside OpenJDK 17, which find_java finds first.
install_java() {
  ((EUID == 0)) && command -v apt-get >/dev/null 2>&1 || return 1
  local pkg need
  need=$(java_min)
  export DEBIAN_FRONTEND=noninteractive
  for pkg in "openjdk-$need-jre-headless" openjdk-21-jre-headless openjdk-25-jre-headless; do
    if [[ $(apt-cache policy "$pkg" 2>/dev/null | sed -nE 's/^ *Candidate: *//p') =~ ^[0-9] ]] ||
      { apt-get update -qq >&2 && [[ $(apt-cache policy "$pkg" 2>/dev/null | sed -nE 's/^ *Candidate: *//p') =~ ^[0-9] ]]; }; then
      log "installing $pkg (Elasticsearch $ES_VERSION needs Java $need or newer)"
      apt-get install -y -qq --no-install-recommends "$pkg" >&2 || return 1
      return 0
    fi
  done
  return 1
}

java_home() {
  local need v jh
  need=$(java_min)
  if [[ -n ${ES_JAVA_HOME:-} ]]; then
    v=$(java_major "$ES_JAVA_HOME") || die "ES_JAVA_HOME=$ES_JAVA_HOME holds no working java"
    ((v >= need)) || die "ES_JAVA_HOME=$ES_JAVA_HOME is Java $v; Elasticsearch $ES_VERSION needs Java $need or newer"
    printf '%s\n' "$ES_JAVA_HOME"
    return
  fi
  # JAVA_HOME is everyone's: a Java 17 set for other tools does not stop a 9.x node, which
  # then looks for a newer one.
  if [[ -n ${JAVA_HOME:-} ]]; then
    if v=$(java_major "$JAVA_HOME") && ((v >= need)); then
      printf '%s\n' "$JAVA_HOME"
      return
    fi
    log "JAVA_HOME=$JAVA_HOME is not Java $need or newer, which Elasticsearch $ES_VERSION needs: looking for another"
  fi
  if jh=$(find_java); then
    printf '%s\n' "$jh"
    return
  fi
  install_java && jh=$(find_java) && { printf '%s\n' "$jh"; return; }
  die "no Java $need or newer found (Elasticsearch $ES_VERSION needs it): install one, or set JAVA_HOME"
}

# fetch_distribution makes sure $es_home holds the unpacked distribution.
fetch_distribution() {
  local marker=$es_home/.unpacked
  [[ -f $marker ]] && return 0

  local zip=$MAVEN_REPO/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip
  if [[ ! -f $zip ]]; then
    command -v mvn >/dev/null 2>&1 || die "mvn is not installed; it fetches Elasticsearch $ES_VERSION from Maven Central"
    log "downloading Elasticsearch $ES_VERSION from Maven Central"
    local t0=$SECONDS
    mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$MAVEN_REPO" dependency:get \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
      -Dtransitive=false >&2 ||
      die "mvn could not fetch org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip"
    [[ -f $zip ]] || die "mvn succeeded but $zip is missing (is MAVEN_REPO right?)"
    log "downloaded in $((SECONDS - t0))s"
  fi

  command -v unzip >/dev/null 2>&1 || die "unzip is not installed"
  log "unpacking $zip into $es_dir"
  local t0=$SECONDS tmp
  mkdir -p "$es_dir"
  tmp=$(mktemp -d "$es_dir/unpack.XXXXXX")
  # Unpack beside the target and rename, so an interrupted unpack never looks complete.
  unzip -q "$zip" -d "$tmp" || { rm -rf "$tmp"; die "unpack $zip failed"; }
  [[ -d $tmp/elasticsearch-$ES_VERSION ]] || { rm -rf "$tmp"; die "$zip has no elasticsearch-$ES_VERSION/"; }
  rm -rf "$es_home"
  mv "$tmp/elasticsearch-$ES_VERSION" "$es_home"
  rmdir "$tmp"
  touch "$marker"
  log "unpacked in $((SECONDS - t0))s"
}

# run_as runs a command as the user that owns the node: ourselves, or ES_USER when we are root,
# because Elasticsearch refuses to run as root.
run_as() {
  if ((EUID == 0)); then
    runuser -u "$ES_USER" -- "$@"
  else
    "$@"
  fi
}

prepare_user() {
  ((EUID == 0)) || return 0
  if ! id -u "$ES_USER" >/dev/null 2>&1; then
    log "creating system user $ES_USER to run Elasticsearch"
    useradd -r -M -d "$es_dir" -s /usr/sbin/nologin "$ES_USER"
  fi
  chown -R "$ES_USER:" "$es_home" "$node_dir"
  run_as test -x "$es_home/bin/elasticsearch" ||
    die "user $ES_USER cannot reach $es_home (a parent directory is not searchable); set ES_DIR to a directory it can reach"
}

start_maven() {
  fetch_distribution
  mkdir -p "$node_dir/data" "$node_dir/logs"
  prepare_user
  local jh
  jh=$(java_home)
  [[ -x $jh/bin/java ]] || die "no java at $jh/bin/java (set JAVA_HOME to Java $(java_min) or newer)"

  log "starting Elasticsearch $ES_VERSION on $local_url (Java at $jh)"
  local t0=$SECONDS
  rm -f "$pid_file"
  # Every setting goes on the command line so the shared config/ is never edited and nodes on
  # different ports can share one unpacked distribution. On loopback the bootstrap checks only
  # warn, so a small vm.max_map_count does not stop the node.
  if ! run_as env ES_JAVA_HOME="$jh" ES_JAVA_OPTS="$ES_JAVA_OPTS" \
    "$es_home/bin/elasticsearch" -d -p "$pid_file" \
    -E discovery.type=single-node \
    -E network.host=127.0.0.1 \
    -E http.port="$ES_PORT" \
    -E xpack.security.enabled=false \
    -E path.data="$node_dir/data" \
    -E path.logs="$node_dir/logs" \
    >"$node_dir/logs/startup.log" 2>&1; then
    log "Elasticsearch failed to start"
    show_log_tail
    exit 1
  fi
  wait_healthy "$local_url" show_log_tail || exit 1
  log "healthy after $((SECONDS - t0))s"
}

start_docker() {
  if container_exists; then
    log "starting existing container $container"
    docker start "$container" >/dev/null
  else
    log "starting $ES_IMAGE as container $container on $local_url"
    docker run -d --name "$container" \
      -p "127.0.0.1:$ES_PORT:9200" \
      -e discovery.type=single-node \
      -e xpack.security.enabled=false \
      -e ES_JAVA_OPTS="$ES_JAVA_OPTS" \
      "$ES_IMAGE" >/dev/null
  fi
  local t0=$SECONDS
  wait_healthy "$local_url" "docker logs --tail 40 $container" || exit 1
  log "healthy after $((SECONDS - t0))s"
}

cmd_start() {
  if [[ -n ${ELASTICSEARCH_URL:-} ]]; then
    log "using ELASTICSEARCH_URL=$(redact "$ELASTICSEARCH_URL")"
    wait_healthy "$ELASTICSEARCH_URL" || exit 1
  elif healthy "$local_url"; then
    log "reusing the cluster that already answers on $local_url"
  elif curl -s --max-time 2 -o /dev/null "$local_url" 2>/dev/null; then
    die "port $ES_PORT answers but not as a healthy Elasticsearch; stop that service or pick another ES_PORT"
  elif docker_works; then
    start_docker
  else
    start_maven
  fi
  url
}

cmd_stop() {
  if [[ -n ${ELASTICSEARCH_URL:-} ]]; then
    log "ELASTICSEARCH_URL is set: leaving that cluster alone"
    return 0
  fi
  local pid
  if pid=$(node_pid); then
    log "stopping Elasticsearch (pid $pid) on $local_url"
    kill -TERM "$pid"
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        log "pid $pid still running after 60s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.5
    done
    rm -f "$pid_file"
    log "stopped"
  elif container_exists; then
    log "removing container $container"
    docker rm -f "$container" >/dev/null
  else
    rm -f "$pid_file"
    log "no node started by this script on port $ES_PORT: nothing to stop"
  fi
}

cmd_status() {
  local target s
  target=$(url)
  if s=$(health "$target"); then
    local how="not started by this script"
    [[ -n ${ELASTICSEARCH_URL:-} ]] && how="from ELASTICSEARCH_URL"
    node_alive && how="pid $(node_pid)"
    container_exists && how="container $container"
    printf 'running at %s (%s), health %s\n' "$(redact "$target")" "$how" "$s"
    [[ $s != red ]] || return 3
  else
    printf 'stopped (nothing answers at %s)\n' "$(redact "$target")"
    return 3
  fi
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) url ;;
  *)
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
    ;;
esac
