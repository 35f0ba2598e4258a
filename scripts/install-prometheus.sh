#!/usr/bin/env bash
# Installs Debian's prometheus and prometheus-alertmanager: promtool and amtool for the rules
# tier, the servers for the alerting end-to-end test. The packages' own services are not
# wanted: tests start their servers on free loopback ports, and a packaged Prometheus on 9090
# would take the operator's default metrics port.
set -euo pipefail

have_all() {
    command -v promtool >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 \
        && [[ -x /usr/bin/prometheus && -x /usr/bin/prometheus-alertmanager ]]
}

if have_all; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "promtool/amtool are missing; run scripts/install-prometheus.sh as root" \
         "(apt-get install -y prometheus prometheus-alertmanager)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d answering 101 tells invoke-rc.d not to start the services the packages ship.
policy=/usr/sbin/policy-rc.d
placed_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    placed_policy=1
fi
trap '[[ $placed_policy -eq 1 ]] && rm -f "$policy"' EXIT
packages=(prometheus prometheus-alertmanager)
if ! apt-get install -y --no-install-recommends "${packages[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"
fi
# Where an init system runs anyway, stop what it started.
for service in prometheus prometheus-alertmanager; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
        systemctl stop "$service" || true
    fi
done
have_all
