#!/usr/bin/env bash
# The browser tier drives Debian's chromium through Playwright (never `playwright install`,
# which downloads a browser build of its own). Installs it when /usr/bin/chromium is missing.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [[ -x "$CHROMIUM" ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-browser: $CHROMIUM is missing; install it as root: apt-get update && apt-get install -y chromium" >&2
    exit 1
fi
echo "install-browser: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
test -x "$CHROMIUM"
