"""The alerting tier: Debian's prometheus and prometheus-alertmanager on loopback ports
(installed by scripts/install-prometheus.sh, which `make test-e2e` runs)."""

import sys
from pathlib import Path

# Imported by path so the support module works under any pytest import mode.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
