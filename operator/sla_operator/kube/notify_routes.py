"""NotificationRoutes on the API server: listed now and then, Secrets read, status patched.

A list every few seconds (not a watch): routes are few and change rarely, and a missing CRD
(a chart installed before the kind existed) is said once and otherwise costs nothing. Status
patches are fenced like every other write: only the Lease holder writes them.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from sla_operator.domain.errors import SecretRefused
from sla_operator.domain.notifications import CREDENTIAL_LABEL, PLURAL
from sla_operator.store.base import StoreError
from sla_operator.store.kube import GROUP, MERGE_PATCH, VERSION, KubeStore

log = logging.getLogger("sla_operator.notify")


class KubeRoutes:
    def __init__(self, store: KubeStore, namespaces: tuple[str, ...] = ()) -> None:
        self.store = store
        self.namespaces = namespaces  # empty: every namespace
        self._said: set[str] = set()

    async def routes(self) -> list[Mapping[str, Any]]:
        custom = self.store.custom
        calls = ([partial(custom.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL)
                  for ns in self.namespaces] if self.namespaces
                 else [partial(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)])
        found: list[Mapping[str, Any]] = []
        for call in calls:
            try:
                listed = await self.store.call(call)
            except StoreError as error:
                message = ("the NotificationRoute CRD is not installed (crds/notificationroutes.yaml)"
                           if error.gone else str(error))
                if message not in self._said:  # a missing CRD or grant: said once
                    self._said.add(message)
                    log.warning("NotificationRoutes not listed: %s", message)
                raise
            found.extend(listed.get("items") or [] if isinstance(listed, Mapping) else [])
        return found

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = await self.store.call(partial(self.store.core.read_namespaced_secret,
                                                   name, namespace))
        except StoreError as error:
            if error.gone:
                raise SecretRefused(f"no secret {name} in namespace {namespace}") from None
            raise SecretRefused(f"secret {name} in namespace {namespace} not read: "
                                f"{error}") from None
        labels = (secret.metadata.labels if secret.metadata is not None else None) or {}
        if labels.get(CREDENTIAL_LABEL) != "true":
            raise SecretRefused(f"secret {name} is not labelled {CREDENTIAL_LABEL}=true, "
                                "which a Secret needs to be used by a NotificationRoute")
        data = secret.data or {}
        if key not in data:
            raise SecretRefused(f"secret {name} has no key {key!r}")
        try:
            return base64.b64decode(data[key]).decode().strip()
        except (ValueError, UnicodeDecodeError):
            raise SecretRefused(f"secret {name}: key {key!r} is not UTF-8 text") from None

    async def write_status(self, key: tuple[str, str], status: Mapping[str, Any]) -> None:
        namespace, name = key
        what = f"the status of NotificationRoute {namespace}/{name}"
        switch = self.store.switch
        switch.check(what)
        call = partial(self.store.custom.patch_namespaced_custom_object_status, GROUP, VERSION,
                       namespace, PLURAL, name, {"status": dict(status)},
                       _content_type=MERGE_PATCH)
        await self.store.call(switch.guard(what, call))
