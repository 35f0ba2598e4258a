"""The Lease's own line to the API server: a connection pool and a thread of its own.

Renewals must never wait behind other API work: status writes share the store's worker
threads and connections, and when slow writes fill them a renewal queued there would come
too late. Everything the election asks of the API server goes through here instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sla_operator.settings import LeaseSettings
from sla_operator.store.base import StoreError

log = logging.getLogger("sla_operator.leader")
LEADER_LABEL = "sla.dev/leader"  # on the leader's pod: the status page's Service selects it


class LeaseConflict(StoreError):
    """Someone else wrote the Lease since it was read (409)."""


class LeaseClient:
    """GET, create and replace one Lease as plain JSON, and label this replica's pod."""

    def __init__(self, api: client.ApiClient, settings: LeaseSettings) -> None:
        # A client of its own: its own urllib3 pool, so a renewal never waits for a
        # connection that a status write holds.
        own = client.ApiClient(configuration=api.configuration)
        own.user_agent = api.user_agent
        self.coordination = client.CoordinationV1Api(own)
        self.core = client.CoreV1Api(own)
        self.settings = settings
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")
        # Each request ends well within the renew deadline: an attempt that hangs must not
        # keep the next one from starting.
        self.timeout = max(0.5, min(10.0, settings.renew_deadline / 2))

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, partial(fn, *args, **kwargs))
        except ApiException as error:
            if error.status == 409:
                raise LeaseConflict("the Lease changed meanwhile") from error
            raise StoreError(f"API {error.status}: {error.reason}",
                             gone=error.status == 404) from error
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as error:
            raise StoreError(f"API unreachable: {error}") from error

    async def read(self) -> dict[str, Any] | None:
        try:
            return await self._run(self._raw, "GET")  # type: ignore[no-any-return]
        except StoreError as error:
            if error.gone:
                return None
            raise

    async def write(self, lease: dict[str, Any] | None, spec: dict[str, Any]) -> None:
        """Create, or replace optimistically (by resourceVersion): LeaseConflict when another
        replica wrote it first."""
        meta: dict[str, Any] = {"name": self.settings.name, "namespace": self.settings.namespace}
        if lease is not None:
            meta["resourceVersion"] = (lease.get("metadata") or {}).get("resourceVersion")
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": spec}
        await self._run(self._raw, "PUT" if lease else "POST", body)

    async def label_pod(self, leading: bool) -> None:
        """Mark this pod (POD_NAME, POD_NAMESPACE from the downward API) as the leader, so a
        Service can send the status page's visitors to the replica that evaluates."""
        pod, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
        if not pod or not namespace:
            return
        patch = {"metadata": {"labels": {LEADER_LABEL: "true" if leading else None}}}
        try:
            await self._run(self.core.patch_namespaced_pod, pod, namespace, patch,
                            _request_timeout=self.timeout)
        except StoreError as error:
            log.warning("pod %s/%s: leader label not %s: %s", namespace, pod,
                        "set" if leading else "removed", error)

    def _raw(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request on the Lease as plain JSON: the client's models would send MicroTime
        without its fixed six fractional digits."""
        api, name, namespace = self.coordination, self.settings.name, self.settings.namespace
        options: dict[str, Any] = {"_preload_content": False, "_request_timeout": self.timeout}
        if method == "GET":
            response = api.read_namespaced_lease(name, namespace, **options)
        elif method == "POST":
            response = api.create_namespaced_lease(namespace, body, **options)
        else:
            response = api.replace_namespaced_lease(name, namespace, body, **options)
        loaded = json.loads(response.data or b"{}")
        return loaded if isinstance(loaded, dict) else {}

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
