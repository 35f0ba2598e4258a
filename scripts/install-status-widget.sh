#!/usr/bin/env bash
# The browser tier loads Atlassian's status widget (@statuspage/status-widget, from the npm
# registry) against the status page's /api/v2/summary.json. Installs it, with Debian's nodejs
# and npm when they are missing, into a cache folder outside the repository (never committed).
# Quiet when it is there already; the test reads the folder from SLA_STATUS_WIDGET_DIR or the default.
set -euo pipefail

VERSION=1.0.5
DIR=${SLA_STATUS_WIDGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sla-operator/status-widget}
BUNDLE="$DIR/node_modules/@statuspage/status-widget/dist/index.js"

if [[ -f "$BUNDLE" ]] && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/@statuspage/status-widget/package.json"; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-status-widget: npm is missing; install it as root: apt-get update && apt-get install -y nodejs npm" >&2
        exit 1
    fi
    echo "install-status-widget: installing Debian's nodejs and npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends nodejs npm
fi
mkdir -p "$DIR"
echo "install-status-widget: npm install @statuspage/status-widget@$VERSION into $DIR"
npm install --prefix "$DIR" --no-audit --no-fund --no-save --loglevel=error \
    "@statuspage/status-widget@$VERSION"
test -f "$BUNDLE"
