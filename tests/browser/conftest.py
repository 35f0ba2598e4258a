"""The browser tier: `sla-operator local` with a real incident, read by Debian's chromium.

Playwright drives /usr/bin/chromium (never a browser of Playwright's own download); the
Makefile's `test-browser` installs it first with scripts/install-browser.sh.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from urllib.request import urlopen

import pytest
from browser_site import CHROMIUM, ROOT, Site, free_port, start_target, wait_until, write_manifests


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-browser.sh` "
                    "(or `make test-browser`, which does)", pytrace=False)
    root = tmp_path_factory.mktemp("site")
    manifests = root / "manifests"
    manifests.mkdir()
    target_port, status_port = free_port(), free_port()
    write_manifests(manifests, target_port)
    target = start_target(target_port)
    log = root / "local.log"
    with log.open("ab") as sink:
        operator = subprocess.Popen(
            [sys.executable, "-m", "sla_operator", "local", "--manifests", str(manifests),
             "--state", str(root / "state"), "--metrics-port", "0",
             "--status-port", str(status_port), "--bind-address", "127.0.0.1",
             "--evaluate-interval", "0.2", "--status-interval", "1"],
            cwd=ROOT, stdout=sink, stderr=sink, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{status_port}"
    try:
        wait_until("an outage on the status page", lambda: b'"Down"' in urlopen(f"{url}/api/v1/status").read()
              and b"is down" in urlopen(f"{url}/api/v1/status").read())
        yield Site(url, manifests, log)
    finally:
        operator.send_signal(signal.SIGTERM)
        operator.wait(timeout=30)
        target.terminate()
        target.wait(timeout=10)
