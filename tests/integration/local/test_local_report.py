"""`sla-operator report --manifests DIR --state DIR`: the embedded default's own report, from
the same folders `local` works in, agreeing with the status it wrote."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from local_support import ROOT, LocalProcess, Target, agreement, read, write_manifests


def report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sla_operator", "report", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


async def test_the_report_from_local_folders_counts_what_the_status_counted(
        target: Target, manifests: Path, state: Path,
        local: Callable[[], LocalProcess]) -> None:
    write_manifests(manifests / "shop.yaml", agreement("shop", target.port))
    operator = local().start()
    await operator.wait_for("Up", lambda: operator.status("shop").get("state") == "Up")
    target.failing.add("/api")
    await operator.wait_for("the outage", lambda: operator.incident_files())
    await asyncio.sleep(2)
    target.failing.clear()
    await operator.wait_for("resolved", lambda: all(
        read(p)["spec"]["state"] == "resolved" for p in operator.incident_files()))
    assert operator.stop() == 0
    status = operator.status("shop")
    await asyncio.sleep(3)  # the operator is stopped: nobody measures this

    done = report("--manifests", str(manifests), "--state", str(state), "-o", "json")
    assert done.returncode == 0, done.stderr
    (line,) = json.loads(done.stdout)["agreements"]
    assert line["agreement"] == "shop"
    assert line["period"] == status["currentPeriod"]["label"]
    assert line["incidents"] == 1
    assert abs(line["downtime_seconds"] - status["currentPeriod"]["downtimeSeconds"]) <= 1
    assert line["downtime_seconds"] >= 2
    # Before local mode first saw the agreement, and since it stopped: unmonitored, as the
    # status counts it (the report adds the seconds since the last evaluation).
    since_stop = line["unmonitored_seconds"] - status["currentPeriod"]["unmonitoredSeconds"]
    assert 3 <= since_stop <= 30, since_stop
    statement = report_statement(manifests, state)
    assert statement.returncode == 0, statement.stderr
    figures = json.loads(statement.stdout)
    assert abs(figures["totals"]["eligibleSeconds"]
               - status["currentPeriod"]["eligibleSeconds"]) <= 2, figures["totals"]

    table = report("--manifests", str(manifests), "--state", str(state))
    assert table.returncode == 0 and "shop" in table.stdout


def report_statement(manifests: Path, state: Path) -> subprocess.CompletedProcess[str]:
    period = datetime.now(UTC).strftime("%Y-%m")
    return subprocess.run([sys.executable, "-m", "sla_operator", "statement", "--manifests",
                           str(manifests), "--state", str(state), "--period", period, "-o", "json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_manifests_without_state_is_refused_naming_both_flags(manifests: Path) -> None:
    done = report("--manifests", str(manifests))
    assert done.returncode == 2
    assert "--manifests and --state go together" in done.stderr
    missing = report("--manifests", str(manifests / "nope"), "--state", str(manifests))
    assert missing.returncode == 2 and "--manifests" in missing.stderr
