"""``run --location NAME``: other locations' reports (a watch) and heartbeats (their Leases,
read every retry period) into the engine's intake. Without ``--location`` none of it runs:
the process is the single location ``default``, as before locations."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import kopf
from kubernetes import client

from sla_operator.domain.errors import SpecError
from sla_operator.domain.location_reports import Heartbeat, heartbeat_from_lease, report_from_manifest
from sla_operator.engine import Engine
from sla_operator.store.kube import GROUP, VERSION

log = logging.getLogger("sla_operator.kube")
HEARTBEAT_READ_SECONDS = 2.0
"""How often the locations' Leases are read: their reporters renew them as often (the retry
period), so a location that stops is noticed within its Lease's duration and this."""


def enable() -> None:
    """Watch LocationReports (before kopf runs)."""
    kopf.on.event(GROUP, VERSION, "locationreports")(report_event)


async def report_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    engine: Engine = memo["engine"]
    body = event["object"]
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    if event["type"] == "DELETED":
        engine.drop_report(str(meta.get("namespace")), str(spec.get("agreement")),
                           str(spec.get("location")))
        return
    try:
        engine.take_report(report_from_manifest(body))
    except SpecError as error:
        log.warning("LocationReport %s/%s ignored: %s", meta.get("namespace"), meta.get("name"),
                    error)


async def watch_heartbeats(engine: Engine, api: client.ApiClient, namespace: str,
                           every: float) -> None:
    """The locations' Leases in ``namespace``, read every ``every`` seconds (one list, however
    many agreements and probes): whether each location is still there."""
    coordination = client.CoordinationV1Api(api)
    while True:
        try:
            response: Any = await asyncio.to_thread(
                coordination.list_namespaced_lease, namespace, _preload_content=False,
                _request_timeout=every * 2)
            items = json.loads(response.data or b"{}").get("items") or []
        except Exception as error:  # the API server out of reach: the locations turn stale
            log.warning("locations' Leases in %s not read: %s", namespace, error)
        else:
            beats: dict[str, Heartbeat] = {}
            for lease in items:
                try:
                    found = heartbeat_from_lease(lease)
                except SpecError:
                    continue
                if found is not None:
                    beats[found[0]] = found[1]
            engine.note_heartbeats(beats)
        await asyncio.sleep(every)
