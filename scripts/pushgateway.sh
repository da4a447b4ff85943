#!/usr/bin/env bash
# Builds the Prometheus Pushgateway that the metrics tests push to, into .cache/bin of the
# repository (or $GOBIN when set), unless it is already there. Nothing here starts it: the tests
# run it as a child process on a free port of 127.0.0.1. Prints the path of the binary.
set -euo pipefail

version=v1.11.0
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${GOBIN:-$PWD/.cache/bin}
mkdir -p "$bin"
out=$bin/pushgateway

# A build from the module has no version stamped in; a file beside it records which it is.
if [[ -x $out && $(cat "$out.version" 2>/dev/null) == "$version" ]]; then
  echo "$out"
  exit 0
fi
echo "pushgateway.sh: building pushgateway $version into $bin" >&2
if ! GOBIN=$bin go install "github.com/prometheus/pushgateway@$version" >&2; then
  # go install also asks the module proxy for the module's version list (to report
  # deprecation), which a restricted proxy may refuse although it serves the version itself:
  # then build the downloaded module in place, with its own go.mod and go.sum.
  dir=$(go mod download -json "github.com/prometheus/pushgateway@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $dir ]] || { echo "pushgateway.sh: could not download pushgateway $version" >&2; exit 1; }
  (cd "$dir" && go build -o "$out" .) >&2
fi
echo "$version" >"$out.version"
echo "$out"
