"""What the Kubernetes integration tests share: resources, request filters, a clock, probes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kmock as km

from sla_operator.domain.model import Agreement, Endpoint, ProbeResult
from sla_operator.engine import Engine
from sla_operator.probes.base import ProbeContext

INCIDENTS = km.resource("sla.dev", "v1alpha1", "incidents")
AGREEMENTS = km.resource("sla.dev", "v1alpha1", "servicelevelagreements")
SECRETS = km.resource("", "v1", "secrets")
T0 = datetime(2026, 11, 26, 4, 12, 0, tzinfo=UTC)


def requests_to(apiserver: km.KubernetesEmulator, resource: km.resource, *, method: str | None = None,
                subresource: str | None = None, name: str | None = None) -> list[km.Request]:
    """Requests for one resource, oldest first, optionally of one method, subresource or object."""
    return [r for r in apiserver
            if r.resource == resource
            and (method is None or r.method.value == method)
            and r.subresource == subresource
            and (name is None or r.name == name)]


@dataclass
class Clock:
    """The engine's wall clock; only the test moves it."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> datetime:
        self.now += by
        return self.now


@dataclass
class ScriptedProbes:
    """A probe runner for ProbeScheduler that answers only when the test says so.

    Each ``answer()`` lets exactly one probe complete, stamped with the clock's time, and
    waits until the scheduler has delivered its result; the scheduler's own timing never
    decides what a test sees.
    """

    clock: Clock
    outcomes: asyncio.Queue[bool] = field(default_factory=asyncio.Queue)
    delivered: asyncio.Queue[ProbeResult] = field(default_factory=asyncio.Queue)
    latency_seconds: float = 0.042
    certificate_not_after: datetime | None = None

    async def run(self, endpoint: Endpoint, context: ProbeContext) -> ProbeResult:
        ok = await self.outcomes.get()
        return ProbeResult(self.clock(), ok, self.latency_seconds,
                           "200 OK" if ok else "503 Service Unavailable", self.certificate_not_after)

    async def answer(self, ok: bool) -> ProbeResult:
        await self.outcomes.put(ok)
        return await asyncio.wait_for(self.delivered.get(), timeout=30)


def agreement_manifest(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
        "metadata": {"name": "payments-api", "namespace": "payments", "uid": "a9d6-sla-uid",
                     "generation": 1, "creationTimestamp": "2026-10-01T00:00:00Z"},
        "spec": {"service": "Payments API", "objective": "99.9",
                 "endpoints": [{"name": "api", "http": {"url": "http://127.0.0.1:8099/healthz"}}],
                 **spec},
    }


@dataclass
class World:
    """An Engine writing through KubeStore to kmock, probing with scripted results."""

    engine: Engine
    probes: ScriptedProbes
    clock: Clock
    apiserver: km.KubernetesEmulator
    agreement: Agreement

    async def probe(self, ok: bool, after: timedelta = timedelta(seconds=30)) -> None:
        """Move the clock, let one probe of the endpoint finish, then run one evaluation round."""
        self.clock.advance(after)
        await self.probes.answer(ok)
        await self.engine.evaluate_round()
