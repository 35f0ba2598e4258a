"""Delivering one route's notifications: at least once, in order per subject, with backoff.

Each delivery is rendered once and sent as the same bytes on every attempt, with the same
``X-SLA-Delivery-Id`` (the idempotency key: a receiver that saw it already drops the copy).
Deliveries of one subject (an incident, a maintenance window, an agreement's budget) wait for
the one before them, so "resolved" never overtakes "opened"; other subjects go on meanwhile.

A delivery is retried on a connection failure, a timeout, 408, 429 and 5xx, after 1 s, 2 s,
4 s … (at most ``max_backoff``; a Retry-After the receiver sends is honoured within it) for
``retry_for`` (an hour); any other answer is final. A destination the address policy refuses
is never contacted. Requests go through the probes' HTTP client: the destination's name is
resolved, every address checked against the namespace's policy, and the request sent to an
admitted address, so a name that resolves to a denied address is refused too. Redirects are
not followed.

Messages (status, logs) name the destination's host at most, never its path or query (where
Slack and Teams webhooks keep their token), nor a header's value.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from yarl import URL

from sla_operator import __version__
from sla_operator.domain.errors import SecretRefused
from sla_operator.domain.notification_events import NotificationEvent
from sla_operator.domain.notifications import NotificationRoute
from sla_operator.probes.http_client import HttpClient
from sla_operator.probes.outcome import ProbeFailure
from sla_operator.probes.policy import AddressPolicy

log = logging.getLogger("sla_operator.notify")
DELIVERY_HEADER = "X-SLA-Delivery-Id"
RETRIED_STATUSES = frozenset({408, 425, 429})

SecretReader = Callable[[str, str, str], Awaitable[str]]
"""(namespace, name, key) -> value; raises SecretRefused saying why not."""


@dataclass(frozen=True)
class DeliverySettings:
    timeout: float = 10.0
    """Seconds one attempt may take, connection and answer."""
    first_backoff: float = 1.0
    """Seconds before the first retry; each further one waits twice as long."""
    max_backoff: float = 300.0
    """The longest wait between two attempts."""
    retry_for: float = 3600.0
    """Seconds after the first attempt during which a delivery is retried; then it fails."""


def delivery_id(route: NotificationRoute, event: NotificationEvent) -> str:
    """The idempotency key: the same for the same route and event, on every attempt and
    whichever replica derives the event."""
    owner = route.uid or f"{route.namespace}/{route.name}"
    return hashlib.sha256(f"{owner}|{event.identity}".encode()).hexdigest()[:32]


@dataclass
class Delivery:
    event: NotificationEvent
    delivery_id: str
    body: bytes
    attempts: int = 0
    first_attempt: float | None = None  # loop time


class Refused(Exception):
    """The delivery cannot be sent at all (policy, Secret, a final answer): no retry."""


@dataclass
class RouteState:
    """What the route's status shows of its deliveries."""

    delivered: int = 0
    failed: int = 0
    last_delivery: dict[str, object] | None = None
    last_failure: dict[str, object] | None = None
    problem: str | None = None  # why the route is not ready now; None while it is
    changed: bool = True
    pending_counts: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return sum(self.pending_counts.values())


class RouteSender:
    """One route's queues (one per subject) and the workers draining them."""

    def __init__(self, route: NotificationRoute, policy: AddressPolicy, secrets: SecretReader,
                 client: HttpClient, clock: Callable[[], datetime],
                 settings: DeliverySettings = DeliverySettings()) -> None:
        self.route = route
        self.policy = policy
        self.secrets = secrets
        self.client = client
        self.clock = clock
        self.settings = settings
        self.state = RouteState()
        self._queues: dict[str, deque[Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def enqueue(self, delivery: Delivery) -> None:
        subject = delivery.event.subject
        self._queues.setdefault(subject, deque()).append(delivery)
        self._count(subject)
        if subject not in self._workers:
            self._workers[subject] = asyncio.create_task(self._drain(subject),
                                                         name=f"notify-{self.route.name}")

    async def close(self) -> None:
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()
        self._queues.clear()

    def _count(self, subject: str) -> None:
        self.state.pending_counts[subject] = len(self._queues.get(subject, ()))
        self.state.changed = True

    async def _drain(self, subject: str) -> None:
        queue = self._queues[subject]
        try:
            while queue:
                await self._deliver(queue[0])
                queue.popleft()
                self._count(subject)
        finally:
            self._workers.pop(subject, None)
            if not queue:
                self._queues.pop(subject, None)
                self.state.pending_counts.pop(subject, None)

    async def _deliver(self, delivery: Delivery) -> None:
        loop = asyncio.get_running_loop()
        delivery.first_attempt = delivery.first_attempt or loop.time()
        backoff = self.settings.first_backoff
        while True:
            delivery.attempts += 1
            try:
                wait = await self._attempt(delivery)
            except Refused as refusal:
                self._failed(delivery, str(refusal), final=True)
                return
            if wait is None:
                self._delivered(delivery)
                return
            elapsed = loop.time() - delivery.first_attempt
            pause = min(max(backoff, wait), self.settings.max_backoff)
            if elapsed + pause > self.settings.retry_for:
                last = (self.state.last_failure or {}).get("message")
                self._failed(delivery, f"given up after {delivery.attempts} attempts: {last}",
                             final=True)
                return
            await asyncio.sleep(pause)
            backoff = min(backoff * 2, self.settings.max_backoff)

    async def _attempt(self, delivery: Delivery) -> float | None:
        """None once delivered; else the least wait before the next attempt (0: backoff's)."""
        route = self.route
        try:
            url = URL(route.url if route.url is not None else await self.secrets(
                route.namespace, route.url_secret.name, route.url_secret.key)  # type: ignore[union-attr]
            )
            headers = await self._headers(delivery)
        except SecretRefused as refusal:  # a Secret may yet be created or labelled: retried
            self._failed(delivery, str(refusal), final=False, problem=True)
            return 0.0
        except ValueError:
            raise Refused("the destination is not a valid URL") from None
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise Refused("the destination is not an http:// or https:// URL")
        host = url.raw_host
        try:
            response = await asyncio.wait_for(self.client.send(
                "POST", url, headers, delivery.body, verify=True, policy=self.policy,
                body_limit=4096), self.settings.timeout)
        except ProbeFailure as failure:  # the address policy, or a name that does not resolve
            message = str(failure)
            if message.startswith("DNS"):
                self._failed(delivery, f"{host}: {message}", final=False)
                return 0.0
            self.state.problem = f"destination {host} refused: {message}"
            raise Refused(f"destination {host} refused: {message}") from None
        except TimeoutError:
            self._failed(delivery, f"{host}: no answer within {self.settings.timeout:g}s",
                         final=False)
            return 0.0
        except (OSError, ssl.SSLError) as error:
            self._failed(delivery, f"{host}: {error.strerror or type(error).__name__}"
                         if isinstance(error, OSError) and not isinstance(error, ssl.SSLError)
                         else f"{host}: TLS: {error}", final=False)
            return 0.0
        status = response.status
        retry_after = response.headers.get("Retry-After")
        response.close()
        if 200 <= status < 300:
            return None
        message = f"{host} answered {status}"
        if status >= 500 or status in RETRIED_STATUSES:
            self._failed(delivery, message, final=False)
            return _seconds(retry_after)
        raise Refused(message)

    async def _headers(self, delivery: Delivery) -> dict[str, str]:
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": f"sla-operator/{__version__}",
                   DELIVERY_HEADER: delivery.delivery_id,
                   "X-SLA-Event": str(delivery.event.type)}
        for header in self.route.headers:
            if header.secret is not None:
                headers[header.name] = await self.secrets(self.route.namespace,
                                                          header.secret.name, header.secret.key)
            elif header.value is not None:
                headers[header.name] = header.value
        return headers

    def _delivered(self, delivery: Delivery) -> None:
        self.state.delivered += 1
        self.state.problem = None
        self.state.last_delivery = {"time": self.clock(), "event": str(delivery.event.type),
                                    "deliveryId": delivery.delivery_id,
                                    "attempts": delivery.attempts}
        self.state.changed = True
        log.info("route %s/%s: %s delivered (%s, attempt %d)", self.route.namespace,
                 self.route.name, delivery.event.type, delivery.delivery_id, delivery.attempts)

    def _failed(self, delivery: Delivery, message: str, final: bool, problem: bool = False) -> None:
        self.state.last_failure = {"time": self.clock(), "event": str(delivery.event.type),
                                   "deliveryId": delivery.delivery_id, "message": message}
        if problem:
            self.state.problem = message
        if final:
            self.state.failed += 1
        self.state.changed = True
        log.warning("route %s/%s: %s %s: %s", self.route.namespace, self.route.name,
                    delivery.event.type, "failed" if final else "not delivered yet, retrying",
                    message)


def _seconds(retry_after: str | None) -> float:
    try:
        return max(0.0, float(retry_after)) if retry_after else 0.0
    except ValueError:
        return 0.0  # an HTTP date: the backoff decides
