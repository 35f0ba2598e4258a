"""One-off MaintenanceWindows for an agreement, as a person starts, ends or schedules them.

Pure: manifests and JSON patch operations; refusals say what to do instead."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sla_operator.plugin.edits import EditRefused, stamp

CREATED_BY = "sla.dev/created-by"
NAME_LIMIT = 253


def window_name(agreement: str, start: datetime) -> str:
    suffix = f"-maintenance-{start.strftime('%Y%m%d-%H%M')}"
    head = re.sub(r"[^a-z0-9.-]", "-", agreement.lower())[:NAME_LIMIT - len(suffix)].rstrip("-.")
    return head + suffix


def window_manifest(namespace: str, name: str, agreement: str, start: datetime, end: datetime,
                    description: str, author: str) -> dict[str, Any]:
    if end <= start:
        raise EditRefused(f"the window would end ({stamp(end)}) before it starts ({stamp(start)})")
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"sla.dev/agreement": agreement},
                         "annotations": {CREATED_BY: author}},
            "spec": {"description": description, "slaNames": [agreement],
                     "start": stamp(start), "end": stamp(end)}}


def end_now(window: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Ends a running one-off window at ``now``."""
    spec = window.get("spec") or {}
    name = (window.get("metadata") or {}).get("name")
    if spec.get("schedule"):
        raise EditRefused(f"maintenance window {name} is recurring ({spec['schedule']}); edit "
                          "its schedule or validUntil with kubectl edit mw")
    start, end = (_time(spec.get(k)) for k in ("start", "end"))
    if start is None or end is None:
        raise EditRefused(f"maintenance window {name} has no start and end")
    if start > now:
        raise EditRefused(f"maintenance window {name} has not started (it starts at "
                          f"{spec['start']}); cancel it with: kubectl delete mw {name}")
    if end <= now:
        raise EditRefused(f"maintenance window {name} already ended at {spec['end']}")
    return [{"op": "replace", "path": "/spec/end", "value": stamp(now)}]


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
