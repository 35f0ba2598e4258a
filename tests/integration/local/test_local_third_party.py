"""A third-party dependency down during an outage: P4 record, and the overlap is excluded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from local_support import LocalProcess, Target, agreement, read, write_manifests


async def test_a_dependency_outage_excludes_the_overlapping_downtime(
        target: Target, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    manifest = agreement("shop", target.port, paths=("/api", "/provider"))
    manifest["spec"]["endpoints"][1]["dependency"] = True
    write_manifests(manifests / "shop.yaml", manifest)
    operator = local().start()
    await operator.wait_for("Up", lambda: operator.status("shop").get("state") == "Up")

    target.failing.update({"/api", "/provider"})  # the provider takes the service down with it
    await operator.wait_for("two incidents", lambda: len(operator.incident_files()) == 2)
    specs = {read(p)["spec"]["type"] + ("/dependency" if read(p)["spec"]["dependency"] else ""):
             read(p)["spec"] for p in operator.incident_files()}
    assert specs["outage/dependency"]["severity"] == "P4"
    assert specs["outage/dependency"]["impact"] == "none"
    assert specs["outage/dependency"]["endpoints"] == ["provider"]
    assert specs["outage"]["endpoints"] == ["api"]

    await asyncio.sleep(4)  # a few more seconds of the outage to account
    target.failing.clear()
    await operator.wait_for("both resolved", lambda: all(
        read(p)["spec"]["state"] == "resolved" for p in operator.incident_files()))
    def settled() -> dict[str, object] | None:
        status = operator.status("shop")
        done = status.get("state") == "Up" and not status.get("openIncidents")
        return status if done and status["currentPeriod"]["excludedSeconds"] > 0 else None

    period = (await operator.wait_for("the exclusion accounted", settled))["currentPeriod"]
    outage = read(next(p for p in operator.incident_files() if not read(p)["spec"]["dependency"]))
    lasted = (datetime.fromisoformat(outage["spec"]["resolvedAt"])
              - datetime.fromisoformat(outage["spec"]["startedAt"])).total_seconds()
    # Both failed together, so the provider's outage covers the service's almost entirely
    # (their probes run up to a second apart): that time is excluded, not downtime.
    assert abs(period["excludedSeconds"] + period["downtimeSeconds"] - lasted) <= 1
    assert period["downtimeSeconds"] <= 2 < period["excludedSeconds"]
