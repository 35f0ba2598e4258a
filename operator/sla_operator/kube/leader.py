"""Leader election with a coordination.k8s.io/v1 Lease, the way client-go does it.

Every replica watches and keeps its memory warm; only the holder of the Lease probes and
writes (the store's WriteSwitch). The holder renews every retry period; one that cannot
renew within the renew deadline stops writing at once, and a candidate takes the Lease only
after it has seen no renewal for a whole lease duration: since the deadline is shorter than
the duration, the old leader has stopped before a new one starts. A clean stop hands the
Lease back (no holder), so the next replica takes it within a retry period.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from kubernetes.client.exceptions import ApiException

from sla_operator.settings import LeaseSettings
from sla_operator.store.base import StoreError, WriteSwitch
from sla_operator.store.kube import KubeStore

log = logging.getLogger("sla_operator.leader")
LEADER_LABEL = "sla.dev/leader"  # on the leader's pod: the status page's Service selects it


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with exactly six fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Takes and keeps the Lease; flips ``switch`` and calls ``on_acquired`` first."""

    def __init__(self, store: KubeStore, settings: LeaseSettings, switch: WriteSwitch,
                 on_acquired: Callable[[], Awaitable[None]],
                 monotonic: Callable[[], float] = time.monotonic,
                 then: Callable[[], Awaitable[None]] | None = None) -> None:
        if settings.renew_deadline >= settings.duration:
            raise ValueError("the renew deadline must be shorter than the lease duration")
        self.store, self.settings, self.switch = store, settings, switch
        self.on_acquired, self.monotonic, self.then = on_acquired, monotonic, then
        self._observed: tuple[object, object] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._renewed_at = 0.0

    @property
    def leading(self) -> bool:
        return self.switch.active

    async def run(self) -> None:
        self.switch.active = False
        # A container restarted in its pod (after a crash) starts on standby: the label its
        # previous process set must not keep sending the page's visitors here.
        await self._label_pod(False)
        try:
            while True:
                try:
                    held = await self._try_acquire_or_renew()
                except StoreError as error:
                    log.warning("lease %s/%s: %s", self.settings.namespace, self.settings.name, error)
                    held = False
                now = self.monotonic()
                if held:
                    self._renewed_at = now
                    if not self.leading:
                        await self._promote()
                elif self.leading and now - self._renewed_at >= self.settings.renew_deadline:
                    self.switch.active = False
                    log.warning("lease %s/%s lost: not renewed for %.0fs; writes stopped",
                                self.settings.namespace, self.settings.name,
                                now - self._renewed_at)
                    await self._label_pod(False)
                await asyncio.sleep(self.settings.retry_period)
        finally:
            if self.leading:
                self.switch.active = False
                await asyncio.shield(self._release())
                await asyncio.shield(self._label_pod(False))

    async def _promote(self) -> None:
        log.info("lease %s/%s taken by %s: re-reading statuses, then probing",
                 self.settings.namespace, self.settings.name, self.settings.identity)
        await self.on_acquired()
        if self.monotonic() - self._renewed_at >= self.settings.renew_deadline:
            return  # the re-reading took too long to be sure the Lease is still ours
        self.switch.active = True
        await self._label_pod(True)
        if self.then is not None:
            try:
                await self.then()
            except Exception:  # leading goes on; what failed here says so in the log
                log.exception("after taking the lease")

    async def _label_pod(self, leading: bool) -> None:
        """Mark this pod (POD_NAME, POD_NAMESPACE from the downward API) as the leader, so a
        Service can send the status page's visitors to the replica that evaluates."""
        pod, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
        if not pod or not namespace:
            return
        patch = {"metadata": {"labels": {LEADER_LABEL: "true" if leading else None}}}
        try:
            await self.store.call(partial(self.store.core.patch_namespaced_pod, pod, namespace,
                                          patch, _request_timeout=10))
        except StoreError as error:
            log.warning("pod %s/%s: leader label not %s: %s", namespace, pod,
                        "set" if leading else "removed", error)

    async def _try_acquire_or_renew(self) -> bool:
        lease = await self._read()
        me = self.settings.identity
        if lease is None:
            return await self._write(None, self._spec(None))
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or None
        if holder is not None and holder != me:
            record = (holder, spec.get("renewTime"))
            if record != self._observed:
                self._observed, self._observed_at = record, self.monotonic()
            duration = spec.get("leaseDurationSeconds") or self.settings.duration
            if self.monotonic() - self._observed_at < duration:
                return False
        return await self._write(lease, self._spec(spec))

    def _spec(self, current: dict[str, Any] | None) -> dict[str, Any]:
        now = micro_time(datetime.now(UTC))
        current = current or {}
        mine = current.get("holderIdentity") == self.settings.identity
        transitions = int(current.get("leaseTransitions") or 0)
        return {"holderIdentity": self.settings.identity,
                "leaseDurationSeconds": max(1, round(self.settings.duration)),
                "acquireTime": current.get("acquireTime") if mine else now,
                "renewTime": now,
                "leaseTransitions": transitions if mine or not current else transitions + 1}

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await self.store.call(partial(self._raw, "GET"))
        except StoreError as error:
            if error.gone:
                return None
            raise

    async def _write(self, lease: dict[str, Any] | None, spec: dict[str, Any]) -> bool:
        """Create or replace (optimistically, by resourceVersion); False when someone else won."""
        meta: dict[str, Any] = {"name": self.settings.name, "namespace": self.settings.namespace}
        if lease is not None:
            meta["resourceVersion"] = (lease.get("metadata") or {}).get("resourceVersion")
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": spec}
        try:
            await self.store.call(partial(self._raw, "PUT" if lease else "POST", body))
        except StoreError as error:
            cause = error.__cause__
            if isinstance(cause, ApiException) and cause.status == 409:
                return False
            raise
        return True

    async def _release(self) -> None:
        """Hand the Lease back: no holder, so the next replica need not wait it out."""
        try:
            lease = await self._read()
            spec = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != self.settings.identity:
                return
            await self._write(lease, {**spec, "holderIdentity": None, "leaseDurationSeconds": 1,
                                      "renewTime": micro_time(datetime.now(UTC))})
            log.info("lease %s/%s released", self.settings.namespace, self.settings.name)
        except StoreError as error:
            log.warning("lease %s/%s not released: %s", self.settings.namespace,
                        self.settings.name, error)

    def _raw(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request on the Lease as plain JSON: the client's models would send MicroTime
        without its fixed six fractional digits."""
        api, name, namespace = self.store.coordination, self.settings.name, self.settings.namespace
        options: dict[str, Any] = {"_preload_content": False, "_request_timeout": 10}
        if method == "GET":
            response = api.read_namespaced_lease(name, namespace, **options)
        elif method == "POST":
            response = api.create_namespaced_lease(namespace, body, **options)
        else:
            response = api.replace_namespaced_lease(name, namespace, body, **options)
        loaded = json.loads(response.data or b"{}")
        return loaded if isinstance(loaded, dict) else {}
