#!/usr/bin/env bash
# Installs what `sla-operator statement -o pdf` and its tests need from Debian: pango, which
# WeasyPrint renders text with (the PyPI wheel brings everything else), and poppler-utils,
# whose pdftoppm and pdftotext the tests use to look at the pages and read their text back.
set -euo pipefail

have_all() {
    command -v pdftoppm >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 \
        && ldconfig -p | grep -q 'libpango-1.0.so.0' && ldconfig -p | grep -q 'libpangoft2-1.0.so.0'
}

if have_all; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "pango or poppler-utils is missing; run scripts/install-pdf.sh as root" \
         "(apt-get install -y libpango-1.0-0 libpangoft2-1.0-0 poppler-utils)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 poppler-utils \
    || { apt-get update && apt-get install -y --no-install-recommends \
         libpango-1.0-0 libpangoft2-1.0-0 poppler-utils; }
have_all
