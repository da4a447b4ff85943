#!/usr/bin/env bash
# Builds the corpus of real attachments that the recall test and the extraction benchmark read:
# PDFs written by other programs (pdfTeX, LuaTeX, XeTeX, Ghostscript, groff, FOP, ReportLab,
# htmldoc, Word through PDFCreator, ...) taken from Debian's documentation packages, each beside
# the reference text that poppler's pdftotext extracts from it.
#
# The list of package=version, path and corpus name is crawler/body/testdata/corpus/pdf.list.
# Packages are downloaded with `apt-get download` (no install, no root needed once the package
# lists are current) and unpacked with dpkg-deb into the cache only.
#
# Usage: scripts/corpus.sh [DIR]   (default .cache/corpus; prints DIR when done)
# The recall test finds DIR through MIMECRAWL_CORPUS; under CI=true it fails without it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
list=crawler/body/testdata/corpus/pdf.list
dir=${1:-.cache/corpus}
mkdir -p "$dir/debs" "$dir/pdf"
dir=$(cd "$dir" && pwd)
log() { printf 'corpus.sh: %s\n' "$*" >&2; }

as_root() {
  if ((EUID == 0)); then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi
}

# The reference extractor.
if ! command -v pdftotext >/dev/null 2>&1; then
  log "installing poppler-utils (pdftotext, the reference)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >&2 || true
  as_root apt-get install -y -qq --no-install-recommends poppler-utils >&2 ||
    { log "pdftotext is missing: install Debian's poppler-utils"; exit 1; }
fi

# A marker holds the list it was built from: an unchanged list is not downloaded again.
stamp="$dir/.built"
if [[ -f $stamp ]] && cmp -s "$stamp" "$list"; then
  echo "$dir"
  exit 0
fi

updated=
download() { # package=version
  local spec=$1 pkg=${1%%=*}
  (cd "$dir/debs" && ls "${pkg}"_*.deb >/dev/null 2>&1) && return 0
  (cd "$dir/debs" && apt-get download -qq "$spec" >&2 2>/dev/null) && return 0
  if [[ -z $updated ]]; then
    updated=1
    log "refreshing the package lists"
    as_root apt-get update -qq >&2 || true
    (cd "$dir/debs" && apt-get download -qq "$spec" >&2 2>/dev/null) && return 0
  fi
  # A security update can replace a pinned version in the archive; the documentation it ships
  # rarely changes, and the reference text is made from the same file below either way.
  log "$spec is no longer in the archive; taking the current $pkg"
  (cd "$dir/debs" && apt-get download -qq "$pkg" >&2)
}

rm -rf "${dir:?}/pdf" && mkdir -p "$dir/pdf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while IFS=$'\t' read -r spec path name; do
  [[ -z $spec || $spec == \#* ]] && continue
  pkg=${spec%%=*}
  download "$spec"
  if [[ ! -d $tmp/$pkg ]]; then
    mkdir -p "$tmp/$pkg"
    dpkg-deb -x "$(ls "$dir/debs/${pkg}"_*.deb | head -n1)" "$tmp/$pkg"
  fi
  src=$tmp/$pkg/$path
  [[ -f $src ]] || { log "$spec has no $path"; exit 1; }
  cp "$src" "$dir/pdf/$name"
  pdftotext -q -enc UTF-8 "$dir/pdf/$name" "$dir/pdf/$name.txt" || : >"$dir/pdf/$name.txt"
done <"$list"
rm -rf "$dir/debs"
cp "$list" "$stamp"
log "$(ls "$dir"/pdf/*.pdf | wc -l) PDFs in $dir/pdf"
echo "$dir"
