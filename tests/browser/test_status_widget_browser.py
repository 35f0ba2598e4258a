"""Atlassian's status widget, from the npm registry, reads our /api/v2/summary.json.

`@statuspage/status-widget` is a web component (`<statuspage-widget src="BASE_URL">`) that
fetches BASE_URL/api/v2/summary.json and shows the page's status. Here it is served from a
page of another origin (another port), as a site embedding it would, so the fetch needs the
routes' CORS headers. `scripts/install-status-widget.sh` (run by `make test-browser`) installs
it with npm into a cache folder; nothing of it is committed.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest
import yaml
from browser_site import CHROMIUM, OUT, ROOT, Site, free_port, start_target, wait_until
from playwright.sync_api import Browser, sync_playwright

WIDGET_DIR = Path(os.environ.get("SLA_STATUS_WIDGET_DIR") or
                  Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                  / "sla-operator" / "status-widget")
BUNDLE = WIDGET_DIR / "node_modules" / "@statuspage" / "status-widget" / "dist" / "index.js"
WIDTHS = (360, 1280)
# The published bundle is Parcel 1 output that Babel then marked "use strict": its last step
# assigns the global `parcelRequire`, which strict mode refuses unless the page declares it.
# Declared here, as any site embedding this bundle must; the widget itself runs unchanged.
HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A site that embeds the status widget</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>body {{ font-family: sans-serif; margin: 1rem; color: #333 }}
.invert {{ background: #333; color: #eee; padding: .5rem }}</style></head>
<body><h1>Our partner's site</h1>
<p>Status (basic): <statuspage-widget id="basic" src="{src}"></statuspage-widget></p>
<p class="invert">Status (badge): <statuspage-widget id="badge" src="{src}" appearance="badge"
   title="payments"></statuspage-widget></p>
<script>var parcelRequire;</script><script src="index.js"></script></body></html>
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def healthy_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`sla-operator local` with every public agreement answering: all operational."""
    root = tmp_path_factory.mktemp("healthy")
    manifests = root / "manifests"
    manifests.mkdir()
    target_port, status_port = free_port(), free_port()
    documents = [{"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
                  "metadata": {"name": name, "namespace": "demo"},
                  "spec": {"service": service, "objective": "99.5",
                           "statusPage": {"public": True, "group": "Shop"},
                           "endpoints": [{"name": "api", "interval": "1s", "timeout": "900ms",
                                          "http": {"url": f"http://127.0.0.1:{target_port}/ok"}}]}}
                 for name, service in (("shop", "Demo Shop"), ("search", "Search"))]
    (manifests / "site.yaml").write_text(yaml.safe_dump_all(documents))
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
        wait_until("every agreement up", lambda: b'"indicator":"none"' in urlopen(
            f"{url}/api/v2/status.json").read() and b'"state":"Up"' in urlopen(f"{url}/api/v1/status").read())
        yield Site(url, manifests, log)
    finally:
        operator.send_signal(signal.SIGTERM)
        operator.wait(timeout=30)
        target.terminate()
        target.wait(timeout=10)


class Embedder:
    """Another origin's site, serving the host page and the widget's bundle from npm."""

    def __init__(self, folder: Path) -> None:
        if not BUNDLE.is_file():
            pytest.fail(f"{BUNDLE} is missing: run `bash scripts/install-status-widget.sh` "
                        "(or `make test-browser`, which does)", pytrace=False)
        self.folder = folder
        shutil.copy(BUNDLE, folder / "index.js")
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def page_for(self, site: Site, name: str) -> str:
        (self.folder / f"{name}.html").write_text(HOST_PAGE.format(src=site.url))
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}.html"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedder]:
    serving = Embedder(tmp_path_factory.mktemp("embedder"))
    yield serving
    serving.close()


def show(browser: Browser, url: str, width: int, screenshot: str) -> dict[str, str]:
    """The widgets' indicator classes and texts, once both have fetched the summary."""
    context = browser.new_context(viewport={"width": width, "height": 360})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url, wait_until="load")
        # Locators pierce the widget's open shadow root.
        basic = page.locator("#basic .status-text")
        badge = page.locator("#badge .status-indicator")
        basic.wait_for(timeout=15_000)
        badge.wait_for(timeout=15_000)
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT / screenshot), full_page=True)
        assert errors == []
        # The text as sent; the badge shows it lowercased by CSS.
        return {"basic": (basic.text_content() or "").strip(),
                "badge": (badge.text_content() or "").strip(),
                "indicator": (page.locator("#basic .status-indicator").get_attribute("class")
                              or "").split()[-1],
                "label": (page.locator("#badge .status-text").text_content() or "").strip()}
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_widget_shows_all_systems_operational(browser: Browser, healthy_site: Site,
                                                  embedder: Embedder, width: int) -> None:
    shown = show(browser, embedder.page_for(healthy_site, "healthy"), width,
                 f"widget-healthy-{width}.png")
    assert shown == {"basic": "All Systems Operational", "badge": "All Systems Operational",
                     "indicator": "none", "label": "payments"}


@pytest.mark.parametrize("width", WIDTHS)
def test_the_widget_shows_the_outage(browser: Browser, site: Site, embedder: Embedder,
                                     width: int) -> None:
    """The demo shop is down, with its outage incident open: the widget says so."""
    summary = urlopen(f"{site.url}/api/v2/summary.json").read().decode()
    assert "Demo Shop is down" in summary
    shown = show(browser, embedder.page_for(site, "down"), width, f"widget-down-{width}.png")
    assert shown["indicator"] in ("major", "critical")
    assert shown["basic"] == shown["badge"] == {"major": "Partial System Outage",
                                                 "critical": "Major Service Outage"}[shown["indicator"]]
