"""Snapshots as large as a fleet: agreements of 100 probed HTTP endpoints each."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sla_operator.domain.model import Environment, State
from sla_operator.domain.views import AgreementView, Histogram, ProbeView, Snapshot

NOW = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
PER_AGREEMENT = 100
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


def probe(name: str, fast: int, slow: int) -> ProbeView:
    """``fast`` probes under 50 ms and ``slow`` ones between 0.5 and 1 s, all successful."""
    counts = [0, 0, 0, fast, fast, fast, fast, fast + slow, fast + slow, fast + slow,
              fast + slow, fast + slow]
    return ProbeView(name=name, dependency=False, state=State.UP, last_ok=True,
                     successes=fast + slow, failures=0,
                     latency=Histogram(tuple(zip(BOUNDS, counts, strict=True)),
                                       fast * 0.04 + slow * 0.75))


def fleet(endpoints: int, taken_at: datetime = NOW) -> Snapshot:
    agreements = []
    for n in range(endpoints // PER_AGREEMENT):
        probes = tuple(probe(f"endpoint-{e:03d}", fast=10 + e % 7, slow=e % 3)
                       for e in range(PER_AGREEMENT))
        agreements.append(AgreementView(
            namespace=f"team-{n % 50:02d}", name=f"service-{n:04d}", service=f"Service {n}",
            environment=Environment.PRODUCTION, objective=Decimal("99.9"), public=False,
            group=None, state=State.UP, probes=probes, evaluated_at=taken_at))
    return Snapshot(taken_at=taken_at, agreements=tuple(agreements))
