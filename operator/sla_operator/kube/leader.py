"""Leader election with a coordination.k8s.io/v1 Lease, the way client-go does it.

Every replica watches and keeps its memory warm; only the holder of the Lease probes and
writes, and only while the fencing rule in ``store/fence.py`` allows: until the start of its
last successful renewal plus the renew deadline, by its own monotonic clock. The loop here
does nothing but take and renew the Lease, on its own connection and thread (``LeaseClient``),
every retry period; everything slow runs beside it as tasks of its own:

- the take-over (re-reading every status and incident the previous holder wrote), after
  which the switch turns on if the Lease is still held;
- the follow-up (bringing every PrometheusRule up to date), after that.

Neither can hold a renewal back. A term is one continuous holding of the Lease, named by
its ``leaseTransitions``: a renewal that finds the Lease no longer ours (another replica took
it, even if it gave it back since) starts a new term with a take-over of its own, so a replica
frozen past its deadline writes nothing when it wakes until it has renewed again, and stands
by when another holds the Lease. A clean stop hands the Lease back (no holder), so the next
replica takes it within a retry period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from sla_operator.kube.lease import LeaseConflict
from sla_operator.settings import LeaseSettings
from sla_operator.store.base import StoreError
from sla_operator.store.fence import WriteSwitch

log = logging.getLogger("sla_operator.leader")
# A take-over that has not finished by then is given up: the Lease is handed back.
MIN_TAKE_OVER_SECONDS = 60.0
# Lease calls failing for this long (at least) make /healthz say this replica cannot lead.
MIN_UNREACHABLE_SECONDS = 60.0


class Lease(Protocol):
    async def read(self) -> dict[str, Any] | None: ...
    async def write(self, lease: dict[str, Any] | None, spec: dict[str, Any]) -> None: ...
    async def label_pod(self, leading: bool) -> None: ...


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with exactly six fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _renewal(raw: object) -> datetime | None:
    """A Lease's renewTime; None when it is missing or no time (the Lease is input too)."""
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class LeaderElector:
    """Takes and keeps the Lease; turns ``switch`` on once ``on_acquired`` has run."""

    def __init__(self, lease: Lease, settings: LeaseSettings, switch: WriteSwitch,
                 on_acquired: Callable[[], Awaitable[None]],
                 monotonic: Callable[[], float] = time.monotonic,
                 then: Callable[[], Awaitable[None]] | None = None) -> None:
        if settings.renew_deadline >= settings.duration:
            raise ValueError("the renew deadline must be shorter than the lease duration")
        self.lease, self.settings, self.switch = lease, settings, switch
        self.on_acquired, self.monotonic, self.then = on_acquired, monotonic, then
        self._seen: tuple[object, object] | None = None  # another holder's (holder, renewTime)
        self._seen_at = 0.0  # when that record was first seen, by our clock
        self._other: str | None = None  # who held the Lease at the last read, if not us
        self._term: int | None = None  # leaseTransitions of the term held, None: not holding
        self._take_over: asyncio.Task[None] | None = None
        self._follow_up: asyncio.Task[None] | None = None
        self._failing_since: float | None = None  # first of the Lease calls failing in a row
        self._last_error = ""
        self._take_over_failure: str | None = None
        self._wait_until = 0.0  # after a failed take-over: let another replica try first
        self.previous_renewal: datetime | None = None
        """The Lease's renewTime as found when this replica last took it: its previous holder
        (another replica, or this one before a restart) was alive and writing until then."""

    @property
    def leading(self) -> bool:
        return self.switch.active

    def problems(self) -> list[str]:
        """Why this replica cannot lead (for /healthz); empty for a healthy leader or standby."""
        found = []
        if self._take_over_failure is not None:
            found.append(f"cannot lead: taking over failed: {self._take_over_failure}")
        if self._failing_since is not None:
            failing = self.monotonic() - self._failing_since
            if failing >= max(MIN_UNREACHABLE_SECONDS, 4 * self.settings.duration):
                found.append(f"cannot lead: the Lease {self.settings.namespace}/"
                             f"{self.settings.name} not read or written for {failing:.0f}s: "
                             f"{self._last_error}")
        return found

    async def run(self) -> None:
        self.switch.stand_by()
        # A container restarted in its pod (after a crash) starts on standby: the label its
        # previous process set must not keep sending the page's visitors here.
        await self.lease.label_pod(False)
        try:
            while True:
                await self._attempt()
                await asyncio.sleep(self.settings.retry_period)
        finally:
            held = self._term is not None
            self._stand_by()
            if held:
                await asyncio.shield(self._release())
                await asyncio.shield(self.lease.label_pod(False))

    async def _attempt(self) -> None:
        started = self.monotonic()
        try:
            term = await self._try_acquire_or_renew()
        except StoreError as error:
            if self._failing_since is None:
                self._failing_since = started
            self._last_error = str(error)
            log.warning("lease %s/%s: %s", self.settings.namespace, self.settings.name, error)
            term = None
        else:
            self._failing_since = None
        if term is not None:
            self.switch.renewed(started, self.settings.renew_deadline)
            if term != self._term:
                if self._term is not None:
                    await self._lost("the Lease was held by another replica meanwhile")
                self._term = term
                self._take_over = asyncio.create_task(self._promote(term), name="take-over")
        elif self._term is not None:
            remaining = self.switch.remaining()
            if self._other is not None or remaining is None or remaining <= 0:
                # Another replica holds it, or the deadline passed: writes already stopped
                # (the switch's own clock); say so, and take the label off.
                await self._lost(f"held by {self._other}" if self._other is not None
                                 else f"not renewed for {self.settings.renew_deadline:g}s")

    async def _lost(self, why: str) -> None:
        was_leading = self.switch.leading
        self._stand_by()
        log.warning("lease %s/%s lost (%s): writes stopped", self.settings.namespace,
                    self.settings.name, why)
        if was_leading:
            await self.lease.label_pod(False)

    def _stand_by(self) -> None:
        self.switch.stand_by()
        self._term = None
        for task in (self._take_over, self._follow_up):
            if task is not None:
                task.cancel()
        self._take_over = self._follow_up = None

    async def _promote(self, term: int) -> None:
        log.info("lease %s/%s taken by %s: re-reading statuses, then probing",
                 self.settings.namespace, self.settings.name, self.settings.identity)
        limit = max(MIN_TAKE_OVER_SECONDS, 4 * self.settings.duration)
        try:
            await asyncio.wait_for(self.on_acquired(), limit)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            reason = (f"no answer within {limit:.0f}s" if isinstance(error, TimeoutError)
                      else repr(error))
            await self._give_up(term, reason)
            return
        if self._term != term:
            return
        self._take_over_failure = None
        self.switch.lead()
        if not self.switch.active:
            return  # the deadline passed meanwhile: the next renewal starts a new term
        log.info("lease %s/%s: leading", self.settings.namespace, self.settings.name)
        await self.lease.label_pod(True)
        if self.then is not None:
            self._follow_up = asyncio.create_task(self._after_taking_over(), name="follow-up")

    async def _give_up(self, term: int, reason: str) -> None:
        """A take-over that failed: hand the Lease back so that another replica can lead, and
        let it try first; /healthz says so until a take-over succeeds."""
        log.error("lease %s/%s: taking over failed (%s); handing the Lease back",
                  self.settings.namespace, self.settings.name, reason)
        self._take_over_failure = reason
        if self._term == term:
            self._term, self._take_over = None, None
            self.switch.stand_by()
            self._wait_until = self.monotonic() + self.settings.duration
            await self._release()

    async def _after_taking_over(self) -> None:
        assert self.then is not None
        try:
            await self.then()
        except Exception:  # leading goes on; what failed here says so in the log
            log.exception("after taking the lease")

    async def _try_acquire_or_renew(self) -> int | None:
        """The term (leaseTransitions) held after this attempt; None when not held."""
        lease = await self.lease.read()
        me = self.settings.identity
        spec = (lease or {}).get("spec") or {}
        holder = spec.get("holderIdentity") or None
        self._other = None
        if holder is not None and holder != me:
            record = (holder, spec.get("renewTime"))
            if record != self._seen:
                self._seen, self._seen_at = record, self.monotonic()
            duration = spec.get("leaseDurationSeconds") or self.settings.duration
            if self.monotonic() - self._seen_at < duration:
                self._other = str(holder)
                return None
        if holder != me and self.monotonic() < self._wait_until:
            return None
        new = self._spec(spec if lease is not None else None)
        try:
            await self.lease.write(lease, new)
        except LeaseConflict:
            return None
        if self._term is None:  # taken, not renewed
            self.previous_renewal = _renewal(spec.get("renewTime"))
        return int(new["leaseTransitions"])

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

    async def _release(self) -> None:
        """Hand the Lease back: no holder, so the next replica need not wait it out."""
        try:
            lease = await self.lease.read()
            spec = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != self.settings.identity:
                return
            await self.lease.write(lease, {**spec, "holderIdentity": None,
                                           "leaseDurationSeconds": 1,
                                           "renewTime": micro_time(datetime.now(UTC))})
            log.info("lease %s/%s released", self.settings.namespace, self.settings.name)
        except StoreError as error:
            log.warning("lease %s/%s not released: %s", self.settings.namespace,
                        self.settings.name, error)
