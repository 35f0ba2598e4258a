"""Notifications: the engine's snapshots compared, events sent along the routes that want them.

The notifier reads only ``engine.snapshot`` (frozen, replaced per round) and whether the
engine is active: it never touches the runtime. Only the active engine's process (the Lease
holder) sends; a standby keeps no baseline and no queue, and starts from the snapshot it sees
when it takes over. So events between a holder's last snapshot and its successor's first are
not sent, and deliveries still queued when a process stops are lost (at least once while a
process holds the Lease; the idempotency key lets a receiver drop what arrives twice).

Routes come from a ``RouteSource``: the API server in a cluster (kube/notify_routes.py), the
manifests folder in local mode (local/notify_routes.py). Each route's status (Ready, counts,
last delivery and failure) is written through the source when it changed, at most once per
``status_interval``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from yarl import URL

from sla_operator.domain.errors import SecretRefused, SpecError
from sla_operator.domain.notification_events import NotificationEvent, derive_events
from sla_operator.domain.notification_payloads import render
from sla_operator.domain.notifications import NotificationRoute, route_from_manifest
from sla_operator.domain.records import format_time
from sla_operator.domain.render import Condition, conditions
from sla_operator.domain.views import Snapshot
from sla_operator.engine import Engine
from sla_operator.notify.delivery import Delivery, DeliverySettings, RouteSender, delivery_id
from sla_operator.probes.http_client import HttpClient
from sla_operator.probes.outcome import ProbeFailure
from sla_operator.probes.policy import AddressPolicy, policy_for, resolve_allowed

log = logging.getLogger("sla_operator.notify")
Key = tuple[str, str]


class RouteSource(Protocol):
    async def routes(self) -> list[Mapping[str, Any]]:
        """Every NotificationRoute manifest to follow now."""

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        """A value of a Secret labelled sla.dev/notification-credential=true; SecretRefused."""

    async def write_status(self, key: Key, status: Mapping[str, Any]) -> None:
        """Merge ``status`` into the route's status."""


@dataclass(frozen=True)
class NotifierSettings:
    poll_seconds: float = 0.5
    """How often the engine's snapshot is looked at (a new one appears once per round)."""
    routes_seconds: float = 10.0
    """How often the routes are read again from their source."""
    status_interval: float = 1.0
    """The least time between two status writes of one route."""
    delivery: DeliverySettings = field(default_factory=DeliverySettings)


class Notifier:
    def __init__(self, snapshot: Callable[[], Snapshot], active: Callable[[], bool],
                 source: RouteSource, policy_for: Callable[[str], AddressPolicy],
                 clock: Callable[[], datetime],
                 settings: NotifierSettings = NotifierSettings(),
                 owns: Callable[[str, str], bool] = lambda namespace, name: True) -> None:
        self._snapshot = snapshot
        self._owns = owns  # with shards: whether this shard sends for namespace/name
        self._active = active
        self.source = source
        self.policy_for = policy_for
        self.clock = clock
        self.settings = settings
        self._initial = snapshot()  # the engine's placeholder before its first round
        self._previous: Snapshot | None = None
        self.senders: dict[Key, RouteSender] = {}
        self._client: HttpClient | None = None
        self._problems: dict[Key, tuple[int, str]] = {}  # invalid routes, by generation
        self._written: dict[Key, dict[str, Any]] = {}

    async def run(self) -> None:
        """Until cancelled: routes read again now and then, each new snapshot compared."""
        self._client = HttpClient(asyncio.get_running_loop())
        loop = asyncio.get_running_loop()
        next_routes = next_status = 0.0
        try:
            while True:
                if not self._active():
                    await self._stand_by()
                else:
                    if loop.time() >= next_routes:
                        next_routes = loop.time() + self.settings.routes_seconds
                        await self._guarded(self.refresh_routes())
                    self.step()
                    if loop.time() >= next_status:
                        next_status = loop.time() + self.settings.status_interval
                        await self._guarded(self.write_statuses())
                await asyncio.sleep(self.settings.poll_seconds)
        finally:
            await self._stand_by()
            await self._client.aclose()

    async def _guarded(self, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:  # one failed pass must not stop notifications
            log.exception("notifications: a pass failed; the next one tries again")

    async def _stand_by(self) -> None:
        """Not the holder (or stopping): no baseline, no queue, nothing sent."""
        self._previous = None
        senders, self.senders = list(self.senders.values()), {}
        for sender in senders:
            await sender.close()
        self._written.clear()

    # ------------------------------------------------------------ events

    def step(self) -> list[NotificationEvent]:
        """Compare the newest snapshot with the last one; queue what the routes want."""
        current = self._snapshot()
        if current is self._initial:
            return []  # no round yet: nothing to compare
        previous, self._previous = self._previous, current
        if previous is None or previous is current or not self.senders:
            # The first snapshot seen is the baseline: what it holds is not news. Without a
            # route nothing is compared (a large fleet's snapshot is not walked for nobody).
            return []
        events = derive_events(previous, current)
        for event in events:
            self.dispatch(event, current)
        return events

    def dispatch(self, event: NotificationEvent, snapshot: Snapshot) -> None:
        # One shard sends each event: the agreement's (a window's own, as for its status).
        owner = event.window.name if event.window is not None else event.agreements[0]
        if not self._owns(event.namespace, owner):
            return
        views = {a.name: a for a in snapshot.agreements if a.namespace == event.namespace}
        services = {name: view.service for name, view in views.items()}
        for sender in self.senders.values():
            route = sender.route
            if not route.wants(event.type) or not any(
                    route.selects(event.namespace, name,
                                  views[name].labels if name in views else {})
                    for name in event.agreements):
                continue
            key = delivery_id(route, event)
            sender.enqueue(Delivery(event, key, render(route.format, event, key, route.name,
                                                       services)))

    # ------------------------------------------------------------ routes

    async def refresh_routes(self) -> None:
        try:
            manifests = await self.source.routes()
        except Exception as error:  # the source says why once; the routes known stay
            log.debug("NotificationRoutes not read: %s", error)
            return
        seen: set[Key] = set()
        for manifest in manifests:
            meta = manifest.get("metadata") or {}
            key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
            seen.add(key)
            try:
                route = route_from_manifest(manifest)
            except SpecError as error:
                await self._invalid(key, int(meta.get("generation") or 0), str(error))
                continue
            self._problems.pop(key, None)
            await self._take(route)
        for key in [k for k in self.senders if k not in seen]:
            await self.senders.pop(key).close()
            self._written.pop(key, None)
        for key in [k for k in self._problems if k not in seen]:
            del self._problems[key]

    async def _take(self, route: NotificationRoute) -> None:
        """A new or changed route, or one not ready: its destination checked (again), so a
        Secret labelled since, or a policy problem, shows in its status before any event."""
        sender = self.senders.get(route.key)
        if sender is not None and sender.route == route and sender.state.problem is None:
            return
        policy = self.policy_for(route.namespace)
        if sender is None:
            assert self._client is not None
            sender = RouteSender(route, policy, self.source.read_secret, self._client,
                                 self.clock, self.settings.delivery)
            self.senders[route.key] = sender
        changed = sender.route != route
        sender.route, sender.policy = route, policy
        problem = await self._destination_problem(route, policy)
        if changed or problem != sender.state.problem:
            sender.state.problem = problem
            sender.state.changed = True

    async def _destination_problem(self, route: NotificationRoute,
                                   policy: AddressPolicy) -> str | None:
        """Why the route's destination cannot be used now (a Secret, the address policy); None
        if it can. Values read from Secrets are only looked at, never kept."""
        try:
            text = route.url if route.url is not None else await self.source.read_secret(
                route.namespace, route.url_secret.name, route.url_secret.key)  # type: ignore[union-attr]
            for header in route.headers:
                if header.secret is not None:
                    await self.source.read_secret(route.namespace, header.secret.name,
                                                  header.secret.key)
        except SecretRefused as refusal:
            return str(refusal)
        try:
            url = URL(text)
        except ValueError:
            url = URL()
        host = url.raw_host or ""
        if url.scheme not in ("http", "https") or not host:
            return "the destination is not an http:// or https:// URL"
        try:
            await resolve_allowed(host, url.port or 80, policy)
        except ProbeFailure as failure:
            if str(failure).startswith("DNS"):
                return None  # a name that does not resolve yet: deliveries retry
            return f"destination {host} refused: {failure}"
        return None

    async def _invalid(self, key: Key, generation: int, message: str) -> None:
        if self._problems.get(key) == (generation, message):
            return
        self._problems[key] = (generation, message)
        sender = self.senders.pop(key, None)
        if sender is not None:
            await sender.close()
        log.warning("NotificationRoute %s/%s: invalid spec: %s", *key, message)
        await self._write(key, {"observedGeneration": generation, "message": message,
                                "conditions": conditions([], [Condition(
                                    "Ready", False, "InvalidSpec", message)],
                                    generation, self.clock())})

    # ------------------------------------------------------------ status

    async def write_statuses(self) -> None:
        for key, sender in list(self.senders.items()):
            if not sender.state.changed or not self._owns(*key):  # one shard writes it
                continue
            sender.state.changed = False
            await self._write(key, route_status(sender, self.clock(),
                                                self._written.get(key, {}).get("conditions")))

    async def _write(self, key: Key, status: dict[str, Any]) -> None:
        if self._written.get(key) == status:
            return
        try:
            await self.source.write_status(key, status)
        except Exception as error:  # the next change writes it again
            log.warning("NotificationRoute %s/%s: status not written: %s", *key, error)
            return
        self._written[key] = status


def route_status(sender: RouteSender, now: datetime,
                 previous: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    state, route = sender.state, sender.route
    ready = (Condition("Ready", False, "DestinationRefused", state.problem)
             if state.problem else Condition("Ready", True, "Accepted",
                                             "suspended" if route.suspend else "sending"))
    status: dict[str, Any] = {
        "observedGeneration": route.generation, "message": state.problem or "",
        "conditions": conditions(previous or [], [ready], route.generation, now),
        "delivered": state.delivered, "failed": state.failed, "pending": state.pending,
    }
    for name, value in (("lastDelivery", state.last_delivery), ("lastFailure", state.last_failure)):
        if value is not None:
            status[name] = {k: format_time(v) if isinstance(v, datetime) else v
                             for k, v in value.items()}
    return status


def engine_notifier(engine: Engine, source: RouteSource,
                    settings: NotifierSettings = NotifierSettings()) -> Notifier:
    """The notifier of ``engine``: its snapshots, its switch, its address policy."""
    base, rules = engine.settings.policy, engine.settings.namespace_rules
    return Notifier(lambda: engine.snapshot, lambda: engine.active, source,
                    partial(policy_for, base, rules), engine.clock, settings,
                    engine.settings.sharding.owns)
