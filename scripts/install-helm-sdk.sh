#!/usr/bin/env bash
# Installs helm-sdkpy (the Helm library wrapped for Python) into the project virtualenv.
# Its metadata asks for Python >= 3.12, yet it runs on 3.11, so it is installed outside
# pyproject.toml with --ignore-requires-python. Idempotent: exits early when importable.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${SLA_VENV_PYTHON:-$ROOT/.venv/bin/python}"

if [[ ! -x $PY ]]; then
    echo "install-helm-sdk: $PY not found; run 'make venv' first" >&2
    exit 1
fi
if "$PY" -c 'import helm_sdkpy' 2>/dev/null; then
    exit 0
fi
"$PY" -m pip install --quiet --ignore-requires-python 'helm-sdkpy>=0.1'
"$PY" -c 'import helm_sdkpy'
