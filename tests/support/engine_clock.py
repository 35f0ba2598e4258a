"""What the engine tests share: a start time, a clock they move, one HTTP endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sla_operator.domain.model import Endpoint, HttpProbe

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
API = Endpoint("api", HttpProbe("http://127.0.0.1:8099/healthz"), interval=SECOND,
               timeout=SECOND / 2, failure_threshold=3, success_threshold=2)


class Clock:
    """Now is T0 until a test moves it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now
