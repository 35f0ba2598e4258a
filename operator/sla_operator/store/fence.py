"""The fencing rule: whether this process may write, decided in one place.

Without leader election the process is the only writer and may always write. With it, a
replica writes only while both hold:

1. it has finished taking over (``lead``): the statuses and incidents the previous holder
   wrote were read again, so nothing is decided on an old picture;
2. its own monotonic clock is before its deadline: the *start* of the last successful
   renewal of the Lease plus the renew deadline (``renewed``).

A candidate takes the Lease only after it has seen no renewal for a whole lease duration,
measured from when *it* saw the renewal, which is after the holder started that renewal.
The renew deadline is shorter than the duration, so a holder that could not renew (a slow
API server, a full connection pool, a process frozen by SIGSTOP or a stalled node) has
stopped writing before anyone else can start: by its own clock, whatever request is still
pending. This is client-go's rule (leaderelection.go: RenewDeadline < LeaseDuration).

Every write of the operator passes ``check`` (the store's requests, in the worker thread just
before the request is sent; the PrometheusRule keeper before each write), so a write queued
behind slow ones is refused when its turn comes after the deadline.

What it does not guarantee, as client-go says of its own: the clocks of two replicas must run
at about the same *rate* (their offsets do not matter: no one compares timestamps across
machines), and a process frozen between the check and the moment its request leaves the
machine (microseconds) sends it when it wakes. The API server itself does not fence: a status
merge patch carries no precondition that a stale holder's request would fail.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sla_operator.store.base import StoreError

P = ParamSpec("P")
T = TypeVar("T")


class Fenced(StoreError):
    """A write refused before it was sent: this process is not (or no longer) the writer."""


class WriteSwitch:
    """Whether this process may write now (see the module's docstring for the rule)."""

    def __init__(self, active: bool = True,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._leading = active
        self._until: float | None = None  # None: no Lease, no deadline

    @property
    def active(self) -> bool:
        """Probe, evaluate and write; otherwise keep the watched objects and nothing else."""
        return self._leading and (self._until is None or self._monotonic() < self._until)

    @active.setter
    def active(self, value: bool) -> None:
        """On or off with no deadline: a process that runs alone, or a test."""
        self._leading, self._until = value, None

    @property
    def leading(self) -> bool:
        """Taken over, whether or not the deadline has passed since."""
        return self._leading

    def renewed(self, started: float, renew_deadline: float) -> None:
        """A renewal that started at ``started`` (monotonic) succeeded: writes may go on
        until ``started + renew_deadline``."""
        self._until = started + renew_deadline

    def lead(self) -> None:
        """The take-over is done: write while the deadline allows."""
        if self._until is None:
            self._until = -math.inf  # leading by a Lease needs a renewal first
        self._leading = True

    def stand_by(self) -> None:
        self._leading = False
        if self._until is not None:
            self._until = -math.inf

    def remaining(self) -> float | None:
        """Seconds left before the deadline; None without one."""
        return None if self._until is None else self._until - self._monotonic()

    def check(self, what: str) -> None:
        """Raise Fenced unless this process may write ``what`` now."""
        if not self.active:
            raise Fenced(f"not the Lease holder now: {what} is left to the holder")

    def guard(self, what: str, fn: Callable[P, T]) -> Callable[P, T]:
        """``fn`` checked at the moment it runs (in the worker thread, after any queueing)."""
        def fenced(*args: P.args, **kwargs: P.kwargs) -> T:
            self.check(what)
            return fn(*args, **kwargs)
        return fenced
