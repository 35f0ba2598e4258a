"""The one interface the engine writes through; the Kubernetes API and a local folder implement it."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Protocol

from sla_operator.domain.incidents import Change
from sla_operator.domain.model import Incident

Key = tuple[str, str]  # (namespace, name)


class Kind(StrEnum):
    AGREEMENT = "ServiceLevelAgreement"
    MAINTENANCE = "MaintenanceWindow"
    INCIDENT = "Incident"
    SUPPORT_REQUEST = "SupportRequest"

    @property
    def plural(self) -> str:
        return {"ServiceLevelAgreement": "servicelevelagreements",
                "MaintenanceWindow": "maintenancewindows",
                "Incident": "incidents",
                "SupportRequest": "supportrequests"}[self.value]


class StoreError(RuntimeError):
    """A write that failed after the store's own retries; the engine tries again next round.

    ``gone``: the object written to (or an incident's agreement) no longer exists.
    ``retry_after``: seconds the API server asked to wait before writing again (429 Too Many
    Requests from API Priority and Fairness, or a 503 with ``Retry-After``); None otherwise."""

    def __init__(self, message: str, gone: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.gone = gone
        self.retry_after = retry_after


class Store(Protocol):
    async def create_incident(self, incident: Incident, owner_uid: str | None) -> Incident:
        """Persist a new incident; returns it as stored (its name may get a suffix on clash)."""

    async def change_incident(self, incident: Incident, change: Change) -> Incident:
        """Set the changed fields and append the timeline entries, keeping what people added."""

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        """Merge ``status`` into the object's status."""

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        """One value of a Secret in ``namespace``; raises SecretRefused saying why not."""

    async def record_event(self, kind: Kind, key: Key, reason: str, message: str,
                           warning: bool = False) -> None:
        """Tell the people watching the object (kubectl describe / the log)."""
