"""The status page of `sla-operator local`: served from the engine, public agreements only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from local_support import LocalProcess, Target, agreement, free_port, poll, write_manifests


async def fetch(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def status_json(port: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}/api/v1/status") as response:
        document: dict[str, Any] = await response.json()
        return document


async def test_the_page_shows_a_public_outage_and_keeps_the_last_good_spec(
        target: Target, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    shop = agreement("shop", target.port, statusPage={"public": True, "group": "Shop"})
    hidden = agreement("ledger", target.port, ("/ledger",))
    write_manifests(manifests / "shop.yaml", shop)
    write_manifests(manifests / "ledger.yaml", hidden)
    port = free_port()
    operator = local().start("--status-port", str(port))

    async def shop_up() -> dict[str, Any] | None:
        try:
            document = await status_json(port)
        except aiohttp.ClientError:
            return None
        return document if document["state"] == "Up" else None

    await poll(shop_up, "the page to show shop Up")
    target.failing.update({"/api", "/ledger"})

    async def outage() -> dict[str, Any] | None:
        document = await status_json(port)
        return document if document["incidents"] and document["state"] == "Down" else None

    document = await poll(outage, "the outage on the page")
    assert [a["name"] for a in document["agreements"]] == ["shop"]
    assert [i["agreement"] for i in document["incidents"]] == ["shop"]
    assert document["incidents"][0]["updates"][0]["state"] == "investigating"
    status, html = await fetch(port, "/")
    assert status == 200 and "Shop is down" in html and "ledger" not in html.lower()
    assert "127.0.0.1" not in html  # no probe URL, host or message

    # A rejected edit: the last good spec stays on the page.
    broken = agreement("shop", target.port, statusPage={"public": True, "group": "Shop"})
    broken["spec"]["endpoints"][0]["timeout"] = "5s"  # longer than the interval
    write_manifests(manifests / "shop.yaml", broken)
    await operator.wait_for("the edit refused", lambda: "is invalid" in operator.log())
    document = await status_json(port)
    assert [a["name"] for a in document["agreements"]] == ["shop"]
    assert operator.stop() == 0
