"""Two shards (`run --shards 2 --shard 0|1 --leader-elect`) on a real API server split a set
of agreements with no overlap and no gap: each agreement is probed, evaluated and written by
one process, its incidents too, and each shard holds its own Lease."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from sla_operator.domain.shards import shard_of
from support import OperatorProcess, free_port, get, namespace_with_crds, wait_for

Kubectl = Callable[..., Any]
PER_SHARD, FAILING_PER_SHARD = 6, 2
MANAGER = "sla-operator-shard-"


class PathTarget:
    """One HTTP server, one path per agreement; answers 503 on the paths in ``failing`` and
    logs (time, path) of every probe."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.log: list[tuple[datetime, str]] = []
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.strip("/")
                with target.lock:
                    target.log.append((datetime.now(UTC), path))
                self.send_response(503 if path in target.failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def probed(self, after: datetime | None = None) -> dict[str, int]:
        with self.lock:
            counts: dict[str, int] = {}
            for moment, path in self.log:
                if after is None or moment > after:
                    counts[path] = counts.get(path, 0) + 1
            return counts

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-shards") as name:
        yield name


def names_per_shard(namespace: str) -> dict[int, list[str]]:
    """PER_SHARD agreement names in each of the two shards (the namespace is random)."""
    chosen: dict[int, list[str]] = {0: [], 1: []}
    number = 0
    while min(len(names) for names in chosen.values()) < PER_SHARD:
        name = f"sla-{number}"
        shard = shard_of(namespace, name, 2)
        if len(chosen[shard]) < PER_SHARD:
            chosen[shard].append(name)
        number += 1
    return chosen


def agreement(name: str, url: str) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": name},
            "spec": {"service": name, "objective": "99.9", "statusPage": {"public": True},
                     "endpoints": [
                {"name": "api", "interval": "1s", "timeout": "500ms", "failureThreshold": 2,
                 "successThreshold": 1, "http": {"url": url}}]}}


def fetch(kubectl: Kubectl, namespace: str, resource: str) -> Any:
    """As ``kubectl get -o json``, with managedFields (which kubectl hides by default)."""
    result = kubectl("get", resource, "-n", namespace, "-o", "json", "--show-managed-fields",
                     check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def managers(item: dict[str, Any]) -> set[str]:
    """The operator processes that wrote any field of the object (from the user agent)."""
    fields = (item.get("metadata") or {}).get("managedFields") or []
    return {entry["manager"] for entry in fields if entry.get("manager", "").startswith(MANAGER)}


def probed_agreements(process: OperatorProcess) -> set[str] | None:
    text = process.metrics()
    if text is None or "sla_operator_shard{" not in text:
        return None
    found = set()
    for line in text.splitlines():
        if line.startswith("sla_probes_total{"):
            labels = dict(part.split("=", 1) for part in line[17:line.index("}")].split(","))
            found.add(labels["agreement"].strip('"'))
    return found


def test_two_shards_split_the_agreements_and_their_incidents_with_no_overlap_and_no_gap(
        kubectl: Kubectl, kubeconfig: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    owned = names_per_shard(namespace)
    owner = {name: shard for shard, names in owned.items() for name in names}
    failing = {name for names in owned.values() for name in names[:FAILING_PER_SHARD]}
    target = PathTarget(failing)
    shards = [OperatorProcess(
        kubeconfig, namespace, tmp_path, name=f"shard-{index}", status_page=True,
        env={"POD_NAME": f"shard-{index}", "POD_NAMESPACE": namespace},
        extra_args=("--shards", "2", "--shard", str(index), "--leader-elect",
                    "--leader-elect-namespace", namespace,
                    "--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s",
                    "--leader-elect-retry-period", "0.5s"))
        for index in range(2)]
    try:
        for process in shards:
            process.start()
        window = {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
                  "metadata": {"name": "later"},
                  "spec": {"description": "later", "slaNames": sorted(owner),
                           "start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z"}}
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
            [agreement(name, f"http://127.0.0.1:{target.port}/{name}") for name in owner]
            + [window]))

        # No gap: every agreement gets a status, every failing one exactly one incident.
        def statuses() -> dict[str, dict[str, Any]] | None:
            items = (fetch(kubectl, namespace, "sla") or {}).get("items") or []
            found = {i["metadata"]["name"]: i for i in items
                     if (i.get("status") or {}).get("state") in ("Up", "Down")}
            return found if set(found) == set(owner) else None

        slas = wait_for("a status on every agreement", statuses, timeout=120)

        def incidents() -> list[dict[str, Any]] | None:
            items = (fetch(kubectl, namespace, "incidents") or {}).get("items") or []
            ready = [i for i in items if (i.get("status") or {}).get("durationSeconds") is not None]
            return ready if {i["spec"]["agreement"] for i in ready} == failing else None

        opened = wait_for("an incident with its status for every failing agreement", incidents,
                          timeout=120)
        assert len(opened) == len(failing)

        # No overlap: each object written by the process of its shard only.
        slas = wait_for("a status on every agreement", statuses)
        for name, item in slas.items():
            assert managers(item) == {f"{MANAGER}{owner[name]}"}, (name, item["metadata"])
            assert item["status"]["state"] == ("Down" if name in failing else "Up")
        for incident in opened:
            shard = owner[incident["spec"]["agreement"]]
            assert managers(incident) == {f"{MANAGER}{shard}"}, incident["metadata"]
            other = shards[1 - shard].log_path.read_text(errors="replace")
            assert incident["metadata"]["name"] not in other
        later = wait_for("the window's status", lambda: (
            fetch(kubectl, namespace, "mw/later") or {}).get("status") and fetch(
                kubectl, namespace, "mw/later"))
        assert managers(later) == {f"{MANAGER}{shard_of(namespace, 'later', 2)}"}

        # Each shard probes its own agreements, and says which shard it is.
        for index, process in enumerate(shards):
            assert wait_for(f"shard {index}'s probes in /metrics",
                            lambda p=process: probed_agreements(p) or None) == set(owned[index])
            assert f'sla_operator_shard{{shard="{index}",shards="2"}} 1.0' in (process.metrics() or "")

        # Each shard's status page shows the whole fleet: the other shard's agreements as
        # their statuses say, with their incidents.
        for index, process in enumerate(shards):
            def page(p: OperatorProcess = process) -> dict[str, Any] | None:
                shown = json.loads(p.status_page("/api/v1/status") or "{}")
                states = {a["name"]: a["state"] for a in shown.get("agreements") or []}
                expected = {n: "Down" if n in failing else "Up" for n in owner}
                return shown if states == expected else None

            shown = wait_for(f"shard {index}'s page to show every agreement", page)
            assert {i["agreement"] for i in shown["incidents"]} == failing

        # Each shard its own Lease, held by its own process.
        for index in range(2):
            lease = get(kubectl, namespace, f"lease/sla-operator-shard-{index}")
            assert lease["spec"]["holderIdentity"].startswith(f"shard-{index}_")

        # The failing agreements recover: each incident is resolved by its own shard alone.
        with target.lock:
            target.failing.clear()

        def resolved() -> list[dict[str, Any]] | None:
            items = (fetch(kubectl, namespace, "incidents") or {}).get("items") or []
            done = [i for i in items if i["spec"].get("resolvedAt")]
            return done if len(done) == len(opened) == len(items) else None

        for incident in wait_for("every incident resolved", resolved, timeout=60):
            assert managers(incident) == {f"{MANAGER}{owner[incident['spec']['agreement']]}"}

        # The probe target's view: with shard 1 stopped, shard 0 goes on probing its own
        # agreements and never one of shard 1's.
        assert set(target.probed()) == set(owner)
        shards[1].stop()
        stopped = datetime.now(UTC)
        wait_for("shard 0 to probe each of its agreements twice more", lambda: all(
            target.probed(stopped).get(name, 0) >= 2 for name in owned[0]), timeout=30)
        assert set(target.probed(stopped)) == set(owned[0])
        shards[0].assert_running()
        with capsys.disabled():
            print(f"\n[e2e] shards: {len(owned[0])}+{len(owned[1])} agreements, "
                  f"{len(opened)} incidents, each written by its own shard; probes per path "
                  f"{json.dumps(target.probed(), sort_keys=True)}\n")
    finally:
        for process in shards:
            process.stop()
        target.close()
