"""The rules tier: promtool and amtool from Debian's packages (scripts/install-prometheus.sh)."""

import sys
from pathlib import Path

# Imported by path so the support module works under any pytest import mode.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
