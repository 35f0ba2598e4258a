#!/usr/bin/env bash
# Installs Debian's prometheus-blackbox-exporter, the peer the probe engine is benchmarked against.
set -euo pipefail

if command -v prometheus-blackbox-exporter >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "prometheus-blackbox-exporter is missing; run this script as root to install it" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends prometheus-blackbox-exporter; then
    apt-get update
    apt-get install -y --no-install-recommends prometheus-blackbox-exporter
fi
# The package starts a system service on install where an init system runs; the benchmark
# starts its own exporter on a loopback port, so a packaged service is not needed.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus-blackbox-exporter 2>/dev/null; then
    systemctl stop prometheus-blackbox-exporter || true
fi
command -v prometheus-blackbox-exporter >/dev/null
