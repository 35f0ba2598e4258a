"""Deletion and watch health in cluster mode: what kopf's watches alone do not guarantee.

Agreements and windows carry no finalizer (docs/API.md, "Deletion"), so kopf never calls a
deletion handler for them: a deletion arrives as a DELETED watch event, which the handlers
act on. A watch can still miss one (a dropped connection while the object went), and a
watch can stop delivering altogether. A periodic resync lists both kinds, incidents and (while
any is held) support requests, and

- removes from the engine every agreement, window, incident and support request the API
  server no longer has,
  other shards' ones (held for the status page) included (only when it is older than the
  list, so an object created just after the list is kept), and
- compares each listed object's resourceVersion with the newest the watches delivered: an
  object that changed a whole resync ago and was never delivered means the watches have
  stopped, which /healthz then reports, so Kubernetes restarts the operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sla_operator.engine import Engine
from sla_operator.store.base import Key, Kind, StoreError
from sla_operator.store.kube import GROUP, VERSION, KubeStore

log = logging.getLogger("sla_operator.kube")
WATCHED_KINDS = (Kind.AGREEMENT, Kind.MAINTENANCE)


def version_number(meta: Mapping[str, Any]) -> int | None:
    version = meta.get("resourceVersion")
    return int(version) if isinstance(version, str) and version.isdigit() else None


class WatchTracker:
    """The newest resourceVersion the watches delivered per object, and what they owe."""

    def __init__(self, clock: Callable[[], datetime], grace: timedelta) -> None:
        self.clock = clock
        self.grace = grace
        self._seen: dict[tuple[Kind, Key], int] = {}
        self._owed: dict[tuple[Kind, Key], tuple[int, datetime]] = {}  # listed, not delivered

    def delivered(self, kind: Kind, key: Key, meta: Mapping[str, Any], deleted: bool = False) -> None:
        version = version_number(meta)
        if version is None:
            return
        self._seen[(kind, key)] = max(version, self._seen.get((kind, key), 0))
        owed = self._owed.get((kind, key))
        if owed is not None and version >= owed[0]:
            del self._owed[(kind, key)]
        if deleted:
            self._seen.pop((kind, key), None)

    def seen(self, kind: Kind, key: Key) -> int | None:
        return self._seen.get((kind, key))

    def listed(self, kind: Kind, versions: Mapping[Key, int]) -> None:
        """What one list returned; objects it lacks owe nothing any more."""
        now = self.clock()
        for known in [k for k in self._owed if k[0] is kind and k[1] not in versions]:
            del self._owed[known]
        for key, version in versions.items():
            if self._seen.get((kind, key), -1) >= version:
                self._owed.pop((kind, key), None)
            elif (kind, key) not in self._owed:
                self._owed[(kind, key)] = (version, now)

    def problems(self) -> list[str]:
        """For /healthz: objects whose change the watches have not delivered within grace."""
        now = self.clock()
        late = sorted(f"{kind.value} {key[0]}/{key[1]}" for (kind, key), (_, since)
                      in self._owed.items() if now - since > self.grace)
        if not late:
            return []
        more = f" and {len(late) - 3} more" if len(late) > 3 else ""
        return [f"watches stopped: no event for {', '.join(late[:3])}{more} "
                f"in {self.grace.total_seconds():.0f}s after the API server had a newer version"]


# A list of PartialObjectMetadata (metadata.k8s.io/v1; served since Kubernetes 1.15), falling
# back to whole objects for a server that cannot.
METADATA_ONLY = ("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
                 "application/json")


class Resync:
    """Lists both kinds every ``interval`` seconds and reconciles the engine with the lists."""

    def __init__(self, engine: Engine, store: KubeStore, namespaces: Sequence[str],
                 tracker: WatchTracker, interval: float) -> None:
        self.engine, self.store, self.namespaces = engine, store, tuple(namespaces)
        self.tracker, self.interval = tracker, interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.once()
            except StoreError as error:  # the API server is away: the watches will say more
                log.warning("resync skipped: %s", error)

    async def once(self) -> None:
        for kind in WATCHED_KINDS:
            items, revision = await self._list(kind, metadata_only=True)
            versions = {}
            for item in items:
                meta = item.get("metadata") or {}
                version = version_number(meta)
                if version is not None:
                    versions[(str(meta.get("namespace")), str(meta.get("name")))] = version
            self.tracker.listed(kind, versions)
            self._drop_missing(kind, set(versions), revision)
        await self._drop_missing_incidents()
        await self._drop_missing_requests()

    def _drop_missing(self, kind: Kind, present: set[Key], revision: int | None) -> None:
        # Every shard holds other shards' agreements too (for its page): those go as well.
        held = ([*self.engine.agreements, *self.engine.foreign] if kind is Kind.AGREEMENT
                else list(self.engine.maintenance))
        for key in [k for k in held if k not in present]:
            seen = self.tracker.seen(kind, key)
            if revision is not None and seen is not None and seen > revision:
                continue  # created or changed after the list was taken
            log.info("%s %s/%s: gone from the API server without a watch event; removed",
                     kind.value, *key)
            if kind is Kind.AGREEMENT:
                self.engine.remove_agreement(key)
            else:
                self.engine.remove_maintenance(key)

    async def _drop_missing_incidents(self) -> None:
        """Incidents, this shard's and the others' (shown on the page), the API server no
        longer has. Incidents reach no WatchTracker, and the engine files its own: only an
        incident held, as that very object, since before the list was asked for and absent
        from it is gone; one filed or changed meanwhile is not in the list and stays."""
        before = {**self.engine.foreign_incidents, **self.engine.incidents}
        items, _ = await self._list(Kind.INCIDENT, metadata_only=True)
        present = {(str(meta.get("namespace")), str(meta.get("name")))
                   for meta in (item.get("metadata") or {} for item in items)}
        for key, incident in before.items():
            if key in present:
                continue
            if (self.engine.incidents.get(key) or self.engine.foreign_incidents.get(key)) \
                    is not incident:
                continue  # delivered or filed again while the list was taken
            log.info("incident %s/%s: gone from the API server without a watch event; removed",
                     *key)
            self.engine.remove_incident(key)
            self.store.forget(key)

    async def _drop_missing_requests(self) -> None:
        """Support requests the API server no longer has; as for incidents, only one held as
        that very object since before the list was asked for. None held: nothing is listed
        (a cluster without the SupportRequest CRD is not asked for them)."""
        before = dict(self.engine.support_requests)
        if not before:
            return
        items, _ = await self._list(Kind.SUPPORT_REQUEST, metadata_only=True)
        present = {(str(meta.get("namespace")), str(meta.get("name")))
                   for meta in (item.get("metadata") or {} for item in items)}
        for key, request in before.items():
            if key in present or self.engine.support_requests.get(key) is not request:
                continue
            log.info("support request %s/%s: gone from the API server without a watch event; "
                     "removed", *key)
            self.engine.remove_support_request(key)

    async def list(self, kind: Kind) -> list[dict[str, Any]]:
        """Every object of ``kind`` in the watched namespaces, as the API server has it now."""
        items, _ = await self._list(kind)
        return items

    async def _list(self, kind: Kind, metadata_only: bool = False,
                    ) -> tuple[list[dict[str, Any]], int | None]:
        """Every object of ``kind`` in the watched namespaces, and the oldest list revision.

        ``metadata_only``: the API server sends each object's metadata alone (a thousand
        agreements with their statuses are megabytes to encode, send and parse every resync;
        their metadata is what the resync compares). A server that ignores the request sends
        whole objects, which serve as well."""
        custom = self.store.custom
        headers = {"_headers": {"Accept": METADATA_ONLY}} if metadata_only else {}
        calls: list[Callable[[], Any]] = (
            [partial(custom.list_cluster_custom_object, GROUP, VERSION, kind.plural, **headers)]
            if not self.namespaces else
            [partial(custom.list_namespaced_custom_object, GROUP, VERSION, ns, kind.plural,
                     **headers)
             for ns in self.namespaces])
        items: list[dict[str, Any]] = []
        revisions: list[int] = []
        for call in calls:
            listed = await self.store.call(call)
            items += listed.get("items") or []
            revision = version_number(listed.get("metadata") or {})
            if revision is not None:
                revisions.append(revision)
        return items, min(revisions) if len(revisions) == len(calls) else None

