"""kopf's first list of each of the operator's kinds, answered from the operator's own.

Before kopf watches a kind it lists it, and starts the watch from that list's
resourceVersion. The operator has just listed the same kinds in the same namespaces
(``connect.first_lists``, from the API server's watch cache), so kopf's list would be the
same objects a second time, read through to etcd: for 1,000 agreements with their statuses
that is 15 MB the API server decodes and encodes while the restarted operator's status
writes wait behind it. On a loaded control plane it ran past kopf's 30 s request timeout
and was read a second time.

While ``primed`` is in effect, kopf's first list of a kind in a namespace is answered with
the operator's list of it, once; kopf's watch then starts from that list's resourceVersion,
so a change made since comes as a watch event, as after kopf's own list. Every later list
(after a watch whose resourceVersion expired, 410 Gone) is kopf's own.

kopf has no public hook for its list: this replaces ``fetch_objs`` of its client package
while the operator runs, and only when that function is there with the signature it was
written against (kopf 1.45); otherwise kopf lists as it always did.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from sla_operator.kube.connect import FirstLists
from sla_operator.store.kube import GROUP

log = logging.getLogger("sla_operator.kube")

EXPECTED_PARAMETERS = {"settings", "resource", "namespace", "logger"}


class PrimedLists:
    """The operator's first lists, each handed to kopf at most once, and then let go."""

    def __init__(self, listed: FirstLists) -> None:
        self._left: dict[tuple[str, str | None], tuple[list[dict[str, Any]], str]] = {}
        for (plural, namespace), version in listed.versions.items():
            items = listed.items.get(plural, [])
            self._left[(plural, namespace)] = (
                [item for item in items if namespace is None
                 or (item.get("metadata") or {}).get("namespace") == namespace], version)

    def take(self, group: str, plural: str,
             namespace: str | None) -> tuple[list[dict[str, Any]], str] | None:
        if group != GROUP:
            return None
        return self._left.pop((plural, namespace), None)

    @property
    def left(self) -> int:
        return len(self._left)

    def clear(self) -> None:
        """What kopf never asked for (a kind it does not watch) is let go."""
        self._left.clear()


def _kopf_fetching() -> Any | None:
    """kopf's module that lists, when its ``fetch_objs`` is the one this was written for."""
    try:
        from kopf._cogs.clients import fetching
    except ImportError:
        return None
    fetch = getattr(fetching, "fetch_objs", None)
    if fetch is None or not inspect.isasyncgenfunction(fetch):
        return None
    if not set(inspect.signature(fetch).parameters) >= EXPECTED_PARAMETERS:
        return None
    return fetching


@contextmanager
def primed(lists: PrimedLists) -> Iterator[bool]:
    """kopf's first lists answered from ``lists`` within the block; False: this kopf's lists
    cannot be answered, and it lists as usual."""
    fetching = _kopf_fetching()
    if fetching is None:
        log.debug("kopf lists each kind itself: its fetch_objs is not the expected one")
        yield False
        return
    original = fetching.fetch_objs

    async def fetch_objs(*, settings: Any, resource: Any, namespace: str | None,
                         logger: Any, **more: Any) -> AsyncIterator[tuple[list[Any], str]]:
        taken = lists.take(getattr(resource, "group", ""), getattr(resource, "plural", ""),
                           namespace)
        if taken is None:
            async for chunk in original(settings=settings, resource=resource,
                                        namespace=namespace, logger=logger, **more):
                yield chunk
            return
        items, version = taken
        kind = getattr(resource, "kind", None)
        api_version = f"{getattr(resource, 'group', '')}/{getattr(resource, 'version', '')}"
        for item in items:
            _fill(item, kind, api_version)
        yield items, version

    fetching.fetch_objs = fetch_objs
    try:
        yield True
    finally:
        if fetching.fetch_objs is fetch_objs:
            fetching.fetch_objs = original
        lists.clear()


def _fill(item: dict[str, Any], kind: object, api_version: object) -> None:
    """A listed item carries its kind and apiVersion, as kopf's own list sets them."""
    if isinstance(kind, str) and kind:
        item.setdefault("kind", kind)
    if isinstance(api_version, str) and api_version:
        item.setdefault("apiVersion", api_version)

