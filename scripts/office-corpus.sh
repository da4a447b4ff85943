#!/usr/bin/env bash
# Rebuilds the office files of the corpus (crawler/body/testdata/corpus/office) from their
# sources with LibreOffice, so that they are written by another program than ours: report.fodt
# (headings, a table, a footnote, an endnote, a header and a footer) becomes DOCX, ODT, RTF and
# PDF; sheet.csv (dates, fractions, negative and large numbers) becomes XLSX and ODS;
# slides.fodp (two slides, speaker notes) becomes PPTX and ODP. The
# results are committed, because LibreOffice is too large to install in every CI run; the
# expected words of each source are in its .words file, and report.pdf.txt is pdftotext's text.
#
# Needs: apt-get install libreoffice-writer-nogui libreoffice-calc-nogui
# libreoffice-impress-nogui poppler-utils
# (the committed files were made by LibreOffice 7.4.7 of Debian 12).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../crawler/body/testdata/corpus/office"
command -v soffice >/dev/null 2>&1 || { echo "office-corpus.sh: soffice is missing" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
convert() { HOME=$profile soffice --headless "$@" --outdir . >/dev/null; }
for to in docx odt rtf pdf; do convert --convert-to "$to" report.fodt; done
# CSV: comma separated, double quotes, UTF-8, from line 1, US English (ISO dates are read as dates).
for to in xlsx ods; do convert --infilter=CSV:44,34,76,1,,1033 --convert-to "$to" sheet.csv; done
for to in pptx odp; do convert --convert-to "$to" slides.fodp; done
pdftotext -q -enc UTF-8 report.pdf report.pdf.txt
ls -l
