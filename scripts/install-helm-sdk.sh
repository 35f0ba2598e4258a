#!/usr/bin/env bash
# Installs helm-sdkpy (the Helm library wrapped for Python) into the project virtualenv.
# Its metadata asks for Python >= 3.12, yet it runs on 3.11, so it is installed outside
# pyproject.toml with --ignore-requires-python. Pinned: the version the e2e tests were run
# with. Idempotent: exits early when that version is installed.
set -euo pipefail

VERSION="0.1.32"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${SLA_VENV_PYTHON:-$ROOT/.venv/bin/python}"

if [[ ! -x $PY ]]; then
    echo "install-helm-sdk: $PY not found; run 'make venv' first" >&2
    exit 1
fi
installed() {
    "$PY" -c 'import importlib.metadata as m, sys, helm_sdkpy
sys.exit(m.version("helm-sdkpy") != sys.argv[1])' "$VERSION" 2>/dev/null
}
if installed; then
    exit 0
fi
"$PY" -m pip install --quiet --ignore-requires-python "helm-sdkpy==$VERSION"
installed
