"""What the browser tier serves: `sla-operator local` on a failing target, with a person's incident."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "out"
CHROMIUM = "/usr/bin/chromium"
# A person's incident text that would run if the page did not escape it.
HOSTILE_TITLE = '<script>window.pwned = "title"</script> Checkout <img src=x onerror="window.pwned=1">'
HOSTILE_UPDATE = '<img src=x onerror="window.pwned = 2"><script>window.pwned = 3</script> still looking'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Site:
    url: str
    manifests: Path
    log: Path


def start_target(port: int) -> subprocess.Popen[bytes]:
    """A loopback HTTP service whose /api always fails: the shop is Down from the start."""
    code = ("import http.server as h\n"
            "class H(h.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        self.send_response(503 if self.path == '/api' else 200); self.end_headers()\n"
            "    def log_message(self, *a): pass\n"
            f"h.ThreadingHTTPServer(('127.0.0.1', {port}), H).serve_forever()\n")
    return subprocess.Popen([sys.executable, "-c", code])


def write_manifests(folder: Path, target_port: int) -> None:
    def sla(name: str, service: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
                "metadata": {"name": name, "namespace": "demo"},
                "spec": {"service": service, "objective": "99.5", "endpoints": [
                    {"name": "api", "interval": "1s", "timeout": "900ms", "failureThreshold": 2,
                     "successThreshold": 2, "http": {"url": f"http://127.0.0.1:{target_port}{spec.pop('path')}"}}],
                    **spec}}

    started = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    documents = [
        sla("shop", "Demo Shop", path="/api", statusPage={"public": True, "group": "Shop"}),
        sla("search", "Search — 検索 — Поиск " + "very long name " * 8, path="/ok",
            statusPage={"public": True, "group": "Shop"}),
        sla("playground", "Playground", path="/ok", environment="sandbox",
            statusPage={"public": True}),
        sla("ledger", "Internal ledger", path="/ok"),
        # Written by a person with the required fields only, plus one update.
        {"apiVersion": "sla.dev/v1alpha1", "kind": "Incident",
         "metadata": {"name": "checkout-by-hand", "namespace": "demo"},
         "spec": {"agreement": "search", "severity": "P3", "title": HOSTILE_TITLE,
                  "startedAt": started,
                  "updates": [{"time": started, "message": HOSTILE_UPDATE}]}},
    ]
    (folder / "site.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))


def wait_until(what: str, check: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")
