"""Other locations' reports and heartbeats, into the engine's one intake
(``AgreementRuntime.take``); part of Engine (see engine/__init__.py)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sla_operator.domain.location_reports import Heartbeat, LocationReport
from sla_operator.domain.views import LocationStanding
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.engine.settings import EngineSettings
from sla_operator.store.base import Key

log = logging.getLogger("sla_operator.engine")


class Reports:
    """What other locations see, as their reports and Leases say."""

    agreements: dict[Key, AgreementRuntime]
    heartbeats: dict[str, Heartbeat]
    held_locations: set[str]
    location_reports: dict[tuple[str, str, str], LocationReport]
    clock: Any
    settings: EngineSettings
    _changes: int

    def take_report(self, report: LocationReport) -> None:
        """A location's report (as written, or listed at start): each endpoint's view. Kept,
        for an agreement that arrives after it (see ``apply_reports``)."""
        self.location_reports[(report.namespace, report.agreement, report.location)] = report
        runtime = self.agreements.get((report.namespace, report.agreement))
        if runtime is not None:
            self._take_views(runtime, report)

    def apply_reports(self, runtime: AgreementRuntime) -> None:
        """The reports held of an agreement just taken in."""
        namespace, name = runtime.agreement.key
        for (held_namespace, agreement, _), report in self.location_reports.items():
            if (held_namespace, agreement) == (namespace, name):
                self._take_views(runtime, report)

    def _take_views(self, runtime: AgreementRuntime, report: LocationReport) -> None:
        if runtime.probing is None or report.location == runtime.location:
            return
        for endpoint in runtime.agreement.endpoints:
            view = report.views.get(endpoint.name)
            if view is not None and view.last is not None:
                runtime.take(endpoint, report.location, view)
        self._changes += 1

    def drop_report(self, namespace: str, agreement: str, location: str) -> None:
        """A report deleted: that location sees nothing of the agreement any more."""
        self.location_reports.pop((namespace, agreement, location), None)
        runtime = self.agreements.get((namespace, agreement))
        if runtime is None:
            return
        for views in runtime.locations.values():
            views.pop(location, None)
        runtime.dirty = True

    def note_heartbeats(self, heartbeats: dict[str, Heartbeat]) -> None:
        """The locations' Leases as just read. When a location comes or goes (its Lease held
        or not), every agreement decided by quorum is evaluated again at once."""
        now = self.clock()
        self.heartbeats.clear()
        self.heartbeats.update(heartbeats)
        held = {name for name, beat in heartbeats.items() if beat.held(now)}
        if held != self.held_locations:
            self.held_locations = held
            log.info("locations reporting: %s", ", ".join(sorted(held)) or "none")
            for runtime in self.agreements.values():
                if runtime.probing is not None:
                    runtime.dirty = True

    def location_standings(self) -> tuple[LocationStanding, ...]:
        """Every location known (this one, those with a Lease or a report), whether it is
        there, and whether it has disagreed with a quorum for longer than
        ``disagreement_after`` (for sla_location_up and sla_location_disagreement)."""
        own = self.settings.location
        if own is None:
            return ()
        now = self.clock()
        after = timedelta(seconds=self.settings.disagreement_after)
        disagreeing: set[str] = set()
        for runtime in self.agreements.values():
            disagreeing |= runtime.disagreements.lasting(now, after)
        names = {own, *self.heartbeats, *(location for _, _, location in self.location_reports)}
        return tuple(LocationStanding(name, name == own or name in self.held_locations,
                                      name in disagreeing) for name in sorted(names))
