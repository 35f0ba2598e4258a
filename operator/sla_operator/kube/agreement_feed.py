"""The agreements a location probes: listed once, then watched.

A watch costs the API server a line per change, served from its watch cache; a list every
few seconds would cost it every agreement (statuses and all) each time, for each location.
The client's watch runs on a thread of its own per namespace (daemon: a stop never waits for
it) and hands each change to the event loop; a watch that fails, or whose resourceVersion
expired twice (410 Gone), is followed by a new list.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from kubernetes import client, watch

from sla_operator.store.kube import GROUP, VERSION

log = logging.getLogger("sla_operator.reporter")
PLURAL = "servicelevelagreements"
WATCH_SECONDS = 300  # each watch request ends after this and resumes from where it was
RETRY_SECONDS = 5.0

Listed = Callable[[str | None, list[Mapping[str, Any]]], None]
"""(namespace or None for every one, the agreements there): a whole list."""
Changed = Callable[[str, Mapping[str, Any]], None]
"""(ADDED | MODIFIED | DELETED, the agreement): one change."""


def follow(custom: client.CustomObjectsApi, namespaces: tuple[str, ...], listed: Listed,
           changed: Changed, loop: asyncio.AbstractEventLoop) -> threading.Event:
    """Start following the agreements of ``namespaces`` (empty: every namespace); ``listed``
    and ``changed`` are called on ``loop``. Set the event returned to stop."""
    stop = threading.Event()
    for namespace in namespaces or (None,):
        threading.Thread(target=_follow, args=(custom, namespace, listed, changed, loop, stop),
                         name=f"agreements-{namespace or 'all'}", daemon=True).start()
    return stop


def _follow(custom: client.CustomObjectsApi, namespace: str | None, listed: Listed,
            changed: Changed, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
    if namespace is None:
        call: Callable[..., Any] = partial(custom.list_cluster_custom_object, GROUP, VERSION,
                                           PLURAL)
    else:
        call = partial(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL)
    while not stop.is_set():
        try:
            answer = call()
            loop.call_soon_threadsafe(listed, namespace, list(answer.get("items") or []))
            stream = watch.Watch()
            for event in stream.stream(call, resource_version=answer["metadata"]["resourceVersion"],
                                       timeout_seconds=WATCH_SECONDS):
                if stop.is_set():
                    stream.stop()
                    return
                loop.call_soon_threadsafe(changed, event["type"], event["object"])
        except Exception as error:  # the API server out of reach, or the watch expired
            log.warning("agreements in %s: %s; listing again in %gs", namespace or "every namespace",
                        error, RETRY_SECONDS)
            stop.wait(RETRY_SECONDS)
