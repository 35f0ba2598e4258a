"""What only an agreement's status remembers, taken back when the engine (re)starts it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.health import EndpointHealth
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import State
from sla_operator.domain.periods import period_for_label
from sla_operator.domain.saved import SavedStatus, read_saved_status
from sla_operator.engine.runtime import AgreementRuntime

# A Down streak survives a restart this short (a rolling update, a crash and restart).
STREAK_CARRIES_OVER = timedelta(minutes=5)


def restore_status(runtime: AgreementRuntime, status: object, now: datetime,
                   in_open_outage: frozenset[str] = frozenset(), *,
                   alive_until: datetime | None = None,
                   alive_within: timedelta = timedelta(0)) -> tuple[Problem, ...]:
    """Take back what only the status remembers: frozen history, unmonitored gaps, downtime gap.

    The status is untrusted: what cannot be read is left out (history is then recomputed
    from the records) and returned as problems. ``in_open_outage``: the endpoints an open
    automatic outage is about; their state is never carried over (see _carry_over).

    ``alive_until``: when the writer of this status was last known alive (the Lease's last
    renewal before this process took it). A writer whose heartbeat is the Lease writes a
    status only when something shown changes, and at least every ``alive_within``; a status
    written within that much before ``alive_until`` stood until then (a change would have
    been written at once), so the time in between was monitored. A status older than that
    was not being written (its writer was stuck, or it was not the writer's): its own time
    stands."""
    saved = read_saved_status(status, now)
    if (saved.last_evaluated is not None and alive_until is not None
            and saved.last_evaluated < alive_until <= now
            and alive_until - saved.last_evaluated <= alive_within):
        saved = replace(saved, last_evaluated=alive_until)
    problems = list(saved.problems)
    for label, entry in saved.history.items():
        if _closed_by(runtime, label, now):
            runtime.history[label] = dict(entry)
        else:
            # Only a closed period is frozen: an entry of the current one would stand in
            # for its figures for good once it closes.
            problems.append(Problem("status.history", f"{label} has not ended yet; "
                                                      "entry dropped"))
    for gap in saved.unmonitored:
        runtime.add_unmonitored(gap)
    runtime.conditions = [dict(c) for c in saved.conditions]
    longest = max((e.interval for e in runtime.agreement.endpoints), default=timedelta(seconds=30))
    # The operator was not running between its last evaluation and now; an agreement it
    # never evaluated was unmonitored since it was created.
    # lastEvaluated is written to the whole second, so the last evaluation was up to a
    # second after it: the gap starts at the next second, never inside monitored time.
    last = saved.last_evaluated
    seen = last + timedelta(seconds=1) if last is not None else runtime.agreement.created_at
    if seen is not None and now - seen > 2 * longest:
        runtime.add_unmonitored(Interval(seen, now))
    if last is not None and seen is not None and now - seen <= STREAK_CARRIES_OVER:
        _continue_down_streaks(runtime, saved)
    if last is not None and seen is not None and now - seen <= 2 * longest:
        _carry_over(runtime, saved, in_open_outage)
    if last is not None:
        # A restart: the status says what the service was; its first status from this
        # process waits (up to one interval and timeout) for every endpoint's first probe,
        # rather than saying Unknown and then, a moment later, what it was all along.
        # Endpoints whose state was carried over need not wait.
        runtime.warm_until = now + max(
            (e.interval + e.timeout for e in runtime.agreement.own_endpoints),
            default=timedelta(0))
    return tuple(problems)


def _closed_by(runtime: AgreementRuntime, label: str, now: datetime) -> bool:
    """Whether the period ``label`` names in the agreement's window ended by ``now``. A label
    of another kind (the window was changed since) cannot be checked here and is kept."""
    try:
        period = period_for_label(runtime.agreement.window, label)
    except SpecError:
        return True
    return period.end <= now


def _continue_down_streaks(runtime: AgreementRuntime, saved: SavedStatus) -> None:
    """An endpoint Down when the previous process stopped moments ago is still in that streak.

    Without this a restart starts every streak afresh: an outage a person resolved while the
    endpoint kept failing (their word stands for that streak) would be opened again, dated
    after the restart. After a longer gap nobody knows what happened: streaks start afresh.
    """
    for streak in saved.down_streaks:
        endpoint = runtime.agreement.endpoint(streak.endpoint)
        if endpoint is None:
            continue
        runtime.healths[endpoint.name] = EndpointHealth(
            state=State.DOWN, since=streak.since, failure_streak_start=streak.since,
            consecutive_failures=streak.consecutive_failures or endpoint.failure_threshold)


def _carry_over(runtime: AgreementRuntime, saved: SavedStatus,
                in_open_outage: frozenset[str]) -> None:
    """A restart so soon after the last evaluation that the gap counts as monitored (a rolling
    update, a crash and restart): an endpoint Up then is taken to be so still until its
    first probe here says otherwise, the way its state stands between two probes. When all
    of an agreement's own endpoints were Up, its first status then goes out at once, saying
    what the service was, instead of waiting up to an interval for every endpoint's first
    probe; with a thousand agreements those statuses would otherwise all come due at the
    end of that interval, together. The figures do not depend on it: downtime comes from
    the incident records.

    A Down endpoint still waits for its first probe (its streak is continued, see above):
    an evaluation at once could find it Down before an incident recorded moments before
    the restart is read back (a file still being written when the folder was first read),
    and open that outage a second time. So does an endpoint an open outage is about: the
    status saying Up may be older than the outage (a crash right after it was recorded, before
    the status saying Down went out), and the service would read Up beside its open outage."""
    for streak in saved.up_streaks:
        endpoint = runtime.agreement.endpoint(streak.endpoint)
        if endpoint is None or endpoint.name in runtime.healths or endpoint.name in in_open_outage:
            continue
        runtime.healths[endpoint.name] = EndpointHealth(
            state=State.UP, since=streak.since, consecutive_successes=streak.consecutive_successes)
        runtime.carried.add(endpoint.name)
