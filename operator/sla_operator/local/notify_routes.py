"""NotificationRoutes in local mode: manifests of the folder, status files in the state folder.

Routes and the Secrets they name are documents of the manifests folder, as LocalSync applied
them (a route whose manifest breaks the CRD's schema is logged there and not followed). A
route's status goes to ``status/notificationroutes/<namespace>/<name>.yaml`` in the state
folder. A Secret must carry the label ``sla.dev/notification-credential: "true"`` here too:
the same manifests then work unchanged in a cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sla_operator.domain.errors import SecretRefused
from sla_operator.domain.notifications import API_VERSION, CREDENTIAL_LABEL, KIND, PLURAL
from sla_operator.local.files import merge_patch, read_yaml, write_yaml
from sla_operator.local.manifests import secret_data
from sla_operator.local.sync import LocalSync


class LocalRoutes:
    def __init__(self, sync: LocalSync, state: Path) -> None:
        self.sync = sync
        self.state = state

    async def routes(self) -> list[Mapping[str, Any]]:
        return [manifest.body for (kind, _, _), manifest in list(self.sync.applied.items())
                if kind == KIND and not manifest.problems]

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        manifest = self.sync.applied.get(("Secret", namespace, name))
        if manifest is None or manifest.problems:
            raise SecretRefused(f"no secret {name} in namespace {namespace}: no valid Secret "
                                f"manifest {namespace}/{name} in the manifests folder")
        labels = (manifest.body.get("metadata") or {}).get("labels") or {}
        if labels.get(CREDENTIAL_LABEL) != "true":
            raise SecretRefused(f"secret {name} is not labelled {CREDENTIAL_LABEL}=true, "
                                "which a Secret needs to be used by a NotificationRoute")
        data = secret_data(manifest.body)
        if key not in data:
            raise SecretRefused(f"secret {name} has no key {key!r}")
        return data[key].strip()

    def status_path(self, key: tuple[str, str]) -> Path:
        return self.state / "status" / PLURAL / key[0] / f"{key[1]}.yaml"

    async def write_status(self, key: tuple[str, str], status: Mapping[str, Any]) -> None:
        path = self.status_path(key)

        def write() -> None:
            body: dict[str, Any] = read_yaml(path) if path.exists() else {
                "apiVersion": API_VERSION, "kind": KIND,
                "metadata": {"namespace": key[0], "name": key[1]}, "status": {}}
            before = body.get("status")
            body["status"] = merge_patch(before if isinstance(before, Mapping) else {}, status)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_yaml(path, body)

        await asyncio.to_thread(write)
