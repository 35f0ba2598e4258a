"""Leader election and fencing, on fake event-loop time (looptime) with an in-memory Lease.

Each replica reaches the Lease through a line of its own that can be cut (its calls then
hang, as behind a full connection pool or a stalled API server): what must hold is that a
holder's switch is off before any other replica can take the Lease, whatever is pending.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sla_operator.kube.leader import LeaderElector
from sla_operator.kube.lease import LeaseConflict
from sla_operator.settings import LeaseSettings
from sla_operator.store.fence import Fenced, WriteSwitch

pytestmark = pytest.mark.looptime

DURATION, DEADLINE, RETRY = 15.0, 10.0, 2.0


class SharedLease:
    """One Lease object with resourceVersion semantics, as the API server keeps it."""

    def __init__(self) -> None:
        self.record: dict[str, Any] | None = None
        self.version = 0
        self.holders: list[tuple[float, str | None]] = []  # (loop time, holder) per change

    def holder(self) -> str | None:
        return ((self.record or {}).get("spec") or {}).get("holderIdentity")


class Line:
    """One replica's connection to the shared Lease; ``cut`` makes its calls hang."""

    def __init__(self, shared: SharedLease) -> None:
        self.shared = shared
        self.open = asyncio.Event()
        self.open.set()
        self.labels: list[bool] = []

    async def read(self) -> dict[str, Any] | None:
        await self.open.wait()
        await asyncio.sleep(0.01)
        return copy.deepcopy(self.shared.record)

    async def write(self, lease: dict[str, Any] | None, spec: dict[str, Any]) -> None:
        await self.open.wait()
        await asyncio.sleep(0.01)
        current = self.shared.record
        if (lease is None) != (current is None) or (
                lease is not None and lease["metadata"]["resourceVersion"] != self.shared.version):
            raise LeaseConflict("the Lease changed meanwhile")
        self.shared.version += 1
        self.shared.record = {"metadata": {"resourceVersion": self.shared.version},
                              "spec": dict(spec)}
        if spec.get("holderIdentity") != (current or {}).get("spec", {}).get("holderIdentity"):
            self.shared.holders.append((asyncio.get_running_loop().time(),
                                        spec.get("holderIdentity")))

    async def label_pod(self, leading: bool) -> None:
        self.labels.append(leading)


class Replica:
    def __init__(self, shared: SharedLease, name: str,
                 take_over: Callable[[], Awaitable[None]] | None = None,
                 then: Callable[[], Awaitable[None]] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.line = Line(shared)
        self.switch = WriteSwitch(active=False, monotonic=loop.time)
        self.take_overs = 0
        settings = LeaseSettings(name="sla-operator", namespace="ops", identity=name,
                                 duration=DURATION, renew_deadline=DEADLINE, retry_period=RETRY)

        async def counted() -> None:
            self.take_overs += 1
            if take_over is not None:
                await take_over()

        self.elector = LeaderElector(self.line, settings, self.switch, counted,
                                     monotonic=loop.time, then=then)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Replica:
        self.task = asyncio.create_task(self.elector.run())
        return self

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def sample(seconds: float, every: float, *replicas: Replica) -> list[tuple[float, ...]]:
    """Each replica's switch (1 or 0) every ``every`` seconds, with the loop time first."""
    loop, seen = asyncio.get_running_loop(), []
    for _ in range(int(seconds / every)):
        seen.append((loop.time(), *(float(r.switch.active) for r in replicas)))
        await asyncio.sleep(every)
    return seen


def never_both(samples: list[tuple[float, ...]]) -> None:
    both = [s for s in samples if sum(s[1:]) > 1]
    assert not both, f"two writers at once at {both[0][0]:.1f}s"


async def test_a_take_over_slower_than_the_renew_deadline_still_leads_and_keeps_the_lease() -> None:
    shared = SharedLease()
    first = Replica(shared, "a", take_over=lambda: asyncio.sleep(3 * DEADLINE)).start()
    second = Replica(shared, "b").start()
    samples = await sample(6 * DURATION, 0.5, first, second)
    never_both(samples)
    assert first.switch.active and not second.switch.active
    assert [h for _, h in shared.holders] == ["a"], "the Lease changed hands"
    assert first.take_overs == 1 and first.line.labels[-1] is True
    assert first.elector.problems() == []
    await asyncio.gather(first.stop(), second.stop())


async def test_the_follow_up_after_taking_over_never_holds_renewals_back() -> None:
    shared = SharedLease()
    rebuilt = asyncio.Event()

    async def rebuild_every_rule() -> None:  # a thousand PrometheusRules, one after another
        await asyncio.sleep(5 * DURATION)
        rebuilt.set()

    first = Replica(shared, "a", then=rebuild_every_rule).start()
    await asyncio.sleep(RETRY)
    second = Replica(shared, "b").start()
    samples = await sample(7 * DURATION, 0.5, first, second)
    never_both(samples)
    assert rebuilt.is_set()
    assert [h for _, h in shared.holders] == ["a"]
    assert all(s[1] == 1.0 for s in samples if s[0] > RETRY + 1), "the leader stopped leading"
    await asyncio.gather(first.stop(), second.stop())


async def test_writes_stop_at_the_renew_deadline_while_a_renewal_is_still_pending() -> None:
    shared = SharedLease()
    loop = asyncio.get_running_loop()
    first = Replica(shared, "a").start()
    second = Replica(shared, "b").start()
    await asyncio.sleep(3 * RETRY)
    assert first.switch.active
    cut_at = loop.time()
    first.line.open.clear()  # its renewals hang from here on, however long
    samples = await sample(3 * DURATION, 0.1, first, second)
    never_both(samples)
    stopped = next(t for t, a, _ in samples if not a)
    assert stopped - cut_at <= DEADLINE, "the holder kept writing past its deadline"
    taken = next(t for t, _, b in samples if b)
    assert taken - stopped >= DURATION - DEADLINE - RETRY
    with pytest.raises(Fenced):
        first.switch.check("the status of ServiceLevelAgreement shop/web")
    # Its line comes back: it finds the Lease taken and stands by, taking its label off.
    first.line.open.set()
    await asyncio.sleep(2 * RETRY)
    assert not first.switch.active and first.switch.leading is False
    assert first.line.labels[-1] is False and second.switch.active
    await asyncio.gather(first.stop(), second.stop())


async def test_a_holder_that_finds_another_term_takes_over_again_before_it_writes() -> None:
    shared = SharedLease()
    first = Replica(shared, "a").start()
    await asyncio.sleep(2 * RETRY)
    assert first.switch.active and first.take_overs == 1
    first.line.open.clear()  # frozen, as by SIGSTOP
    second = Replica(shared, "b").start()
    await asyncio.sleep(2 * DURATION)
    assert second.switch.active and not first.switch.active
    await second.stop()  # hands the Lease back: no holder
    assert shared.holder() is None
    first.line.open.set()
    await asyncio.sleep(3 * RETRY)
    assert first.switch.active
    assert first.take_overs == 2, "led again on what it knew before another replica wrote"
    await first.stop()


async def test_a_failed_take_over_hands_the_lease_back_and_health_says_why() -> None:
    shared = SharedLease()

    async def unreadable() -> None:
        raise RuntimeError("statuses could not be listed")

    first = Replica(shared, "a", take_over=unreadable).start()
    await asyncio.sleep(RETRY)
    assert not first.switch.active
    assert shared.holder() is None, "kept a Lease it cannot lead with"
    assert any("taking over failed" in p for p in first.elector.problems())
    second = Replica(shared, "b").start()
    await asyncio.sleep(2 * RETRY)
    assert second.switch.active and not first.switch.active
    await asyncio.gather(first.stop(), second.stop())


async def test_a_clean_stop_hands_the_lease_back_and_takes_the_label_off() -> None:
    shared = SharedLease()
    first = Replica(shared, "a").start()
    await asyncio.sleep(2 * RETRY)
    await first.stop()
    assert shared.holder() is None and first.line.labels[-1] is False
    assert not first.switch.active


async def test_a_lease_that_cannot_be_reached_for_long_makes_the_replica_unhealthy() -> None:
    shared = SharedLease()
    first = Replica(shared, "a")

    async def refused() -> dict[str, Any] | None:
        from sla_operator.store.base import StoreError
        raise StoreError("forbidden: leases.coordination.k8s.io is forbidden")

    first.line.read = refused  # type: ignore[method-assign]
    first.start()
    await asyncio.sleep(30)
    assert first.elector.problems() == []  # a short outage is no reason to restart
    await asyncio.sleep(60)
    assert any("forbidden" in p for p in first.elector.problems())
    await first.stop()


async def test_healthz_names_a_failed_take_over_and_a_stopped_election() -> None:
    from sla_operator.kube.startup import _election_problems

    shared = SharedLease()

    async def unreadable() -> None:
        raise RuntimeError("statuses could not be listed")

    first = Replica(shared, "a", take_over=unreadable).start()
    await asyncio.sleep(RETRY)
    assert first.task is not None
    problems = _election_problems(first.elector, first.task)
    assert problems and "cannot lead: taking over failed" in problems[0]
    healthy = Replica(shared, "b").start()
    await asyncio.sleep(RETRY)
    assert _election_problems(healthy.elector, healthy.task) == []  # a standby or leader is fine
    assert _election_problems(None, None) == []  # no election: a single writer

    async def broken() -> None:
        raise RuntimeError("boom")

    died = asyncio.create_task(broken())
    await asyncio.gather(died, return_exceptions=True)
    assert "leader election stopped" in _election_problems(healthy.elector, died)[-1]
    await asyncio.gather(first.stop(), healthy.stop())


async def test_a_replica_that_takes_the_lease_knows_until_when_the_previous_holder_was_alive() -> None:
    shared = SharedLease()
    first = Replica(shared, "a").start()
    await asyncio.sleep(3 * RETRY)
    assert first.elector.previous_renewal is None  # a Lease nobody held before
    first.line.open.clear()  # frozen, as by SIGSTOP: its last renewal is the last sign of life
    assert shared.record is not None
    last_renewal = shared.record["spec"]["renewTime"]
    second = Replica(shared, "b").start()
    await asyncio.sleep(2 * DURATION)
    assert second.switch.active and shared.holder() == "b"
    assert second.elector.previous_renewal is not None
    assert second.elector.previous_renewal.isoformat().replace("+00:00", "Z") == last_renewal
    # Renewals of its own term change nothing: it is what was found when the Lease was taken.
    await asyncio.sleep(3 * RETRY)
    assert second.elector.previous_renewal.isoformat().replace("+00:00", "Z") == last_renewal
    await second.stop()
    first.line.open.set()
    await first.stop()
