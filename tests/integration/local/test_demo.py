"""`make run`'s script end to end: the demo target, local mode on the demo manifests, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from local_support import ROOT, free_port, read, wait_for

DEMO = ROOT / "examples" / "demo"


WEEKLY_WINDOW = 'schedule: "0 3 * * SUN"'


def demo_manifests_for(port: int, folder: Path) -> Path:
    """examples/demo/ with the target's port changed, so the test never clashes with a running demo,
    and the weekly window moved half a day away: inside it (Sunday 03:00-05:00 UTC) no outage opens.
    """
    folder.mkdir()
    far_hour = (datetime.now(UTC).hour + 12) % 24
    for source in DEMO.glob("*.yaml"):
        text = source.read_text().replace("127.0.0.1:8099", f"127.0.0.1:{port}")
        if source.name == "maintenance.yaml":
            assert WEEKLY_WINDOW in text, "the demo's weekly window moved: update this test"
            text = text.replace(WEEKLY_WINDOW, f'schedule: "0 {far_hour} * * *"')
        (folder / source.name).write_text(text)
    return folder


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


async def test_the_demo_opens_and_resolves_an_incident_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    target_port, status_port = free_port(), free_port()
    state = tmp_path / "state"
    env = {**os.environ, "SLA_DEMO_TARGET_PORT": str(target_port),
           "SLA_DEMO_METRICS_PORT": str(free_port()), "SLA_DEMO_STATUS_PORT": str(status_port),
           "SLA_DEMO_STATE": str(state),
           "SLA_DEMO_MANIFESTS": str(demo_manifests_for(target_port, tmp_path / "manifests"))}
    demo = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "demo.py"), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert demo.stdout is not None
    shown: list[str] = []

    async def read_output() -> None:
        assert demo.stdout is not None
        async for line in demo.stdout:
            shown.append(line.decode())

    reader = asyncio.create_task(read_output())
    try:
        await wait_for("the banner", lambda: any("Ctrl-C stops both" in s for s in shown))
        children = children_of(demo.pid)
        assert len(children) == 2, shown
        # The status page is the first address the banner gives.
        banner = [s.strip() for s in shown if s.startswith("  ") and "http://" in s]
        assert banner[0].startswith(f"status page  http://127.0.0.1:{status_port}/"), shown
        assert banner[1].startswith("metrics      http://"), shown
        opened = await wait_for("an outage opened on screen", lambda: next(
            (s for s in shown if "incident demo/demo-shop-2" in s and " opened: " in s), None), 90)
        name = opened.split("incident demo/", 1)[1].split(" ", 1)[0]
        await wait_for("the outage resolved on screen", lambda: any(
            f"incident demo/{name}: recovered" in s for s in shown), 90)
        # examples/demo/notifications.yaml: the demo target prints what the route sends it.
        await wait_for("the resolution's notification printed", lambda: any(
            "notification received: Incident resolved: " in s for s in shown), 30)

        incident = read(state / "incidents" / "demo" / f"{name}.yaml")
        assert incident["spec"]["state"] == "resolved" and incident["spec"]["endpoints"] == ["api"]
        for status in ("servicelevelagreements/demo/demo-shop", "servicelevelagreements/demo/demo-sandbox",
                       "maintenancewindows/demo/weekly-upgrade"):
            assert read(state / "status" / f"{status}.yaml")["status"], status
        assert set(read(state / "agreements.yaml")["agreements"]) == {"demo/demo-shop", "demo/demo-sandbox"}
        # examples/demo/support-requests.yaml: due times written, the statement command shown.
        request = read(state / "status" / "supportrequests" / "demo" / "acme-checkout-errors.yaml")
        assert request["status"]["responseDue"] and request["status"]["target"] == "15m"
        assert any(s.strip().startswith("statement    sla-operator statement --manifests ")
                   for s in shown), shown

        demo.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(demo.wait(), 60) == 0
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()
        await asyncio.wait_for(reader, 10)
    assert any("stopped; the state stays in" in s for s in shown)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "a demo process outlived Ctrl-C"
