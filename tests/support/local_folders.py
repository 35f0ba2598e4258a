"""A manifests folder, a state folder and the local engine over them, for the local-sync tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from sla_operator.engine import Engine
from sla_operator.local.store import LocalStore
from sla_operator.local.sync import LocalSync
from sla_operator.probes.base import utc_now


def agreement(name: str) -> dict[str, Any]:
    """An agreement in namespace demo, probing a loopback port nobody listens on."""
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"service": name.title(), "objective": "99.5", "endpoints": [
                {"name": "api", "interval": "2s", "timeout": "1s",
                 "http": {"url": "http://127.0.0.1:9/api"}}]}}


SHOP = agreement("shop")
SHOP["metadata"]["labels"] = {"team": "shop"}
WINDOW: dict[str, Any] = {
    "apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
    "metadata": {"name": "weekly", "namespace": "demo"},
    "spec": {"schedule": "0 3 * * SUN", "duration": "2h", "slaNames": ["shop"]},
}


class Folders:
    def __init__(self, root: Path, clock: Callable[[], datetime] = utc_now,
                 engine: Callable[[LocalStore], Engine] | None = None) -> None:
        self.manifests = root / "manifests"
        self.manifests.mkdir(exist_ok=True)
        self.state = root / "state"
        self.clock = clock
        self._make_engine = engine or (lambda store: Engine(store, clock=clock))
        self.store = LocalStore(self.state, clock=clock)
        self.engine = self._make_engine(self.store)
        self.sync = LocalSync(self.engine, self.store, self.manifests)

    async def settle(self) -> None:
        """Two polls: one that sees the files as they are now, one that finds them unchanged."""
        await self.sync.rescan()
        await self.sync.rescan()

    def put(self, name: str, *documents: dict[str, Any]) -> Path:
        path = self.manifests / name
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        return path

    def restart(self) -> Folders:
        """A new process over the same folders."""
        again = copy.copy(self)
        again.store = LocalStore(self.state, clock=self.clock)
        again.engine = self._make_engine(again.store)
        again.sync = LocalSync(again.engine, again.store, self.manifests)
        return again
