"""A certificate close to expiry opens a P4 certificate incident; it never counts as downtime."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from certificates import Certificate, make_certificate
from local_support import LocalProcess, agreement, free_port, read, write_manifests


@pytest.fixture
async def expiring_https(tmp_path: Path) -> AsyncIterator[tuple[int, Certificate]]:
    certificate = make_certificate(tmp_path, "expiring", datetime.timedelta(days=2))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert_path, certificate.key_path)

    async def answer(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    yield port, certificate
    await runner.cleanup()


async def test_a_certificate_inside_its_warning_window_opens_a_p4_certificate_incident(
        expiring_https: tuple[int, Certificate], manifests: Path,
        local: Callable[[], LocalProcess]) -> None:
    port, certificate = expiring_https
    manifest = agreement("tls-shop", port)
    manifest["spec"]["endpoints"][0]["http"] = {
        "url": f"https://127.0.0.1:{port}/api", "insecureSkipVerify": True,
        "certificateExpiryWarning": "336h"}
    write_manifests(manifests / "tls-shop.yaml", manifest)
    operator = local().start()

    path = await operator.wait_for("a certificate incident", lambda: operator.incident_files()[0])
    spec = read(path)["spec"]
    assert (spec["type"], spec["severity"], spec["impact"]) == ("certificate", "P4", "none")
    assert spec["endpoints"] == ["api"] and spec["resolvedAt"] is None
    assert certificate.not_after.strftime("%Y-%m-%d") in spec["title"]
    status = await operator.wait_for("the expiry in the endpoint status",
                                     lambda: operator.status("tls-shop").get("state") == "Up"
                                     and operator.status("tls-shop"))
    shown = datetime.datetime.fromisoformat(status["endpoints"][0]["certificateNotAfter"])
    assert shown == certificate.not_after
    assert status["currentPeriod"]["downtimeSeconds"] == 0
    assert len(operator.incident_files()) == 1
