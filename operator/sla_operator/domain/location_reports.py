"""LocationReports and the locations' Leases, as plain data (API.md, "Probing from several
locations").

A location's reporter writes one LocationReport per agreement, only when its view of an
endpoint changes (its state or since); that the view still holds is said by the location's
Lease, renewed every few seconds. So the API server's load grows with changes, not with the
probe rate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sla_operator.domain.errors import SpecError
from sla_operator.domain.fields import parse_time
from sla_operator.domain.health import EndpointHealth
from sla_operator.domain.model import Agreement, ProbeResult, State
from sla_operator.domain.records import format_time

GROUP_VERSION = "sla.dev/v1alpha1"
LEASE_PREFIX = "sla-location-"
"""A location's Lease is ``sla-location-NAME``: its reporter's election and its heartbeat."""
AGREEMENT_LABEL = "sla.dev/agreement"
LOCATION_LABEL = "sla.dev/location"


def location_lease_name(location: str) -> str:
    return f"{LEASE_PREFIX}{location}"


def report_name(agreement: str, location: str) -> str:
    """One report per agreement and location (a dot cannot occur in a location's name)."""
    return f"{agreement}.{location}"


@dataclass(frozen=True)
class LocationReport:
    """What ``location`` sees of the endpoints of agreement ``namespace/agreement``."""

    namespace: str
    agreement: str
    location: str
    views: Mapping[str, EndpointHealth]


def _entry(name: str, health: EndpointHealth) -> dict[str, Any]:
    last = health.last
    return {"name": name, "state": health.state.value, "since": format_time(health.since),
            "lastProbeTime": format_time(last.time) if last else None,
            "message": last.message if last else ""}


def view_entries(agreement: Agreement, healths: Mapping[str, EndpointHealth]
                 ) -> list[dict[str, Any]]:
    """A location's view of each endpoint it has a result of, in the agreement's order."""
    return [_entry(e.name, health) for e in agreement.endpoints
            if (health := healths.get(e.name)) is not None and health.last is not None]


def location_entries(views: Mapping[str, EndpointHealth]) -> list[dict[str, Any]]:
    """Each location's view of one endpoint (``status.endpoints[].locations``), by name."""
    return [_entry(location, views[location]) for location in sorted(views)]


def changed(entries: list[dict[str, Any]], written: list[dict[str, Any]] | None) -> bool:
    """Whether a view differs from the one written in what the decision rests on (the state
    and since of each endpoint); a newer probe time or message alone is no reason to write."""
    if written is None:
        return True
    return ([(e["name"], e["state"], e["since"]) for e in entries]
            != [(e.get("name"), e.get("state"), e.get("since")) for e in written])


def report_manifest(agreement: Agreement, location: str,
                    entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The LocationReport object, owned by the agreement so that it goes with it."""
    meta: dict[str, Any] = {
        "name": report_name(agreement.name, location), "namespace": agreement.namespace,
        "labels": {AGREEMENT_LABEL: agreement.name, LOCATION_LABEL: location}}
    if agreement.uid:
        meta["ownerReferences"] = [{"apiVersion": GROUP_VERSION, "kind": "ServiceLevelAgreement",
                                    "name": agreement.name, "uid": agreement.uid}]
    return {"apiVersion": GROUP_VERSION, "kind": "LocationReport", "metadata": meta,
            "spec": {"agreement": agreement.name, "location": location, "endpoints": entries}}


def report_from_manifest(obj: Mapping[str, Any]) -> LocationReport:
    """A LocationReport object into what the intake takes; SpecError names a bad field."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    views = {}
    for index, entry in enumerate(spec.get("endpoints") or []):
        path = f"spec.endpoints[{index}]"
        try:
            state = State(entry.get("state"))
        except ValueError:
            raise SpecError.at(f"{path}.state", f"{entry.get('state')!r} is not a state") from None
        since = entry.get("since")
        probed = parse_time(entry.get("lastProbeTime"), f"{path}.lastProbeTime")
        views[str(entry.get("name"))] = EndpointHealth(
            state=state, since=parse_time(since, f"{path}.since") if since else None,
            last=ProbeResult(probed, state is not State.DOWN, 0.0, str(entry.get("message", ""))))
    return LocationReport(str(meta.get("namespace") or "default"), str(spec.get("agreement")),
                          str(spec.get("location")), views)


@dataclass(frozen=True)
class Heartbeat:
    """A location's Lease as last read: renewed at, held for."""

    renewed: datetime
    duration: timedelta

    def held(self, now: datetime) -> bool:
        """Whether the location's Lease is still held: its reporter is there."""
        return self.renewed + self.duration >= now

    def seen(self, now: datetime) -> datetime:
        """The newest moment the location is known to be there: now while its Lease is
        held, else its last renewal."""
        return now if self.held(now) else self.renewed


def heartbeat_from_lease(lease: Mapping[str, Any]) -> tuple[str, Heartbeat] | None:
    """A location's name and heartbeat from its Lease; None for another Lease, or one no
    reporter holds (handed back on a clean stop)."""
    name = str((lease.get("metadata") or {}).get("name", ""))
    spec = lease.get("spec") or {}
    if not name.startswith(LEASE_PREFIX) or not spec.get("holderIdentity") \
            or not spec.get("renewTime"):
        return None
    renewed = parse_time(spec["renewTime"], "spec.renewTime")
    duration = timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))
    return name.removeprefix(LEASE_PREFIX), Heartbeat(renewed, duration)
