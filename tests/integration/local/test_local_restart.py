"""Killed with SIGKILL while writing, local mode restarts where it stopped and loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from local_support import LocalProcess, Target, agreement, read, write_manifests


def status_rewritten(operator: LocalProcess, previous: str | None) -> bool:
    return operator.status("shop").get("lastEvaluated") not in (None, previous)


def assert_state_intact(state: Path) -> None:
    """Every file a reader can see is whole: it parses, and incident files are full manifests."""
    for path in state.rglob("*.yaml"):
        if path.name.startswith("."):
            continue  # a temporary file of an interrupted write: never read, cleared at start
        document = read(path)
        if path.parent.parent.name == "incidents":
            assert {"apiVersion", "kind", "metadata", "spec", "status"} <= set(document), path


async def test_sigkill_in_the_middle_of_writes_loses_no_incident_and_no_figures(
        target: Target, manifests: Path, state: Path, local: Callable[[], LocalProcess]) -> None:
    write_manifests(manifests / "shop.yaml", agreement("shop", target.port))
    operator = local().start()
    await operator.wait_for("shop Up", lambda: operator.status("shop").get("state") == "Up")
    target.failing.add("/api")
    incident_file = await operator.wait_for("an incident file", lambda: operator.incident_files()[0])
    operator.kill()  # right after the incident opened, while its statuses are being written
    opened = read(incident_file)["spec"]

    downtime = operator.status("shop").get("currentPeriod", {}).get("downtimeSeconds", 0)
    for attempt in range(4):
        assert_state_intact(state)
        assert operator.incident_files() == [incident_file], "the incident was opened twice"
        leftovers = list(state.rglob(".*.tmp"))
        written = operator.status("shop").get("lastEvaluated")
        operator = local().start()
        await operator.wait_for("a status written after the restart",
                                partial(status_rewritten, operator, written))
        assert not any(p.exists() for p in leftovers), "temporary files of the killed run remain"
        await asyncio.sleep(0.25 * attempt)  # vary the moment of the kill between writes
        operator.kill()
        figures = operator.status("shop")["currentPeriod"]
        # The restart marks the time since the last written lastEvaluated as unmonitored; that
        # time is written to the second, so up to one second moves from downtime to unmonitored.
        assert figures["downtimeSeconds"] >= downtime - 1, "downtime figures went back after a restart"
        assert figures["incidents"] == 1
        downtime = figures["downtimeSeconds"]

    operator = local().start()
    await operator.wait_for("shop Down again", lambda: operator.status("shop").get("state") == "Down")
    target.failing.clear()
    await operator.wait_for("the incident resolved",
                            lambda: read(incident_file)["spec"]["state"] == "resolved")
    assert_state_intact(state)
    assert operator.incident_files() == [incident_file]
    spec = read(incident_file)["spec"]
    assert spec["startedAt"] == opened["startedAt"] and spec["severity"] == opened["severity"]
    assert [u["state"] for u in spec["updates"]] == ["investigating", "resolved"], \
        "a restart repeated or lost an update"
    final = await operator.wait_for("the figures after recovery",
                                    lambda: operator.status("shop").get("openIncidents") == []
                                    and operator.status("shop")["currentPeriod"])
    assert final["downtimeSeconds"] >= downtime - 1 and final["incidents"] == 1
    assert operator.stop() == 0


async def test_a_restart_counts_the_time_it_was_not_running_as_unmonitored(
        target: Target, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    write_manifests(manifests / "shop.yaml", agreement("shop", target.port))
    operator = local().start()
    await operator.wait_for("shop Up", lambda: operator.status("shop").get("state") == "Up")
    first_seen = read(operator.state / "agreements.yaml")["agreements"]["demo/shop"]["firstSeen"]
    operator.kill()
    stopped_at = operator.status("shop")["lastEvaluated"]
    await asyncio.sleep(3)  # longer than two probe intervals: a real gap in monitoring

    operator = local().start()
    # lastEvaluated is whole seconds, so the gap begins at the second after it.
    gap_start = _later_by_a_second(stopped_at)
    gaps = await operator.wait_for("the gap recorded", lambda: [
        g for g in operator.status("shop").get("unmonitored") or ()
        if g["start"] <= gap_start < g["end"]])
    assert gaps
    assert read(operator.state / "agreements.yaml")["agreements"]["demo/shop"]["firstSeen"] == first_seen
    assert operator.status("shop")["currentPeriod"]["unmonitoredSeconds"] >= 3


def _later_by_a_second(stamp: str) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(seconds=1)
    return moment.isoformat().replace("+00:00", "Z")
