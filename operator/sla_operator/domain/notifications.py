"""NotificationRoute: which agreements' events go where, in which format (pure, no I/O).

A route is namespaced and only ever sees the agreements of its own namespace: a tenant's
route cannot follow another tenant's incidents. Its destination is a URL, in the spec or in
a Secret labelled ``sla.dev/notification-credential: "true"`` (webhook URLs of Slack and
Teams carry their token in the path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sla_operator.domain import model as m
from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.fields import enum_value, selector

API_VERSION = "sla.dev/v1alpha1"
KIND = "NotificationRoute"
PLURAL = "notificationroutes"
CREDENTIAL_LABEL = "sla.dev/notification-credential"
"""A Secret a route may read must carry this label with the value "true"."""


class EventType(StrEnum):
    INCIDENT_OPENED = "incidentOpened"
    INCIDENT_ESCALATED = "incidentEscalated"
    INCIDENT_UPDATED = "incidentUpdated"
    INCIDENT_RESOLVED = "incidentResolved"
    MAINTENANCE_ANNOUNCED = "maintenanceAnnounced"
    MAINTENANCE_STARTED = "maintenanceStarted"
    MAINTENANCE_ENDED = "maintenanceEnded"
    BUDGET_EXHAUSTED = "budgetExhausted"
    SUPPORT_RESPONSE_BREACHED = "supportResponseBreached"  # an incident or request answered late


class PayloadFormat(StrEnum):
    GENERIC = "generic"
    SLACK = "slack"
    MSTEAMS = "msteams"


@dataclass(frozen=True)
class NotificationRoute:
    namespace: str
    name: str
    format: PayloadFormat = PayloadFormat.GENERIC
    url: str | None = None
    url_secret: m.SecretRef | None = None
    headers: tuple[m.Header, ...] = ()
    agreements: tuple[str, ...] = ()
    selector: m.LabelSelector | None = None
    events: frozenset[EventType] = frozenset(EventType)
    suspend: bool = False
    uid: str | None = None
    generation: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def destination(self) -> tuple[object, ...]:
        """What decides where and how deliveries go: a change of it starts a new sender."""
        return (self.format, self.url, self.url_secret, self.headers)

    def selects(self, namespace: str, agreement: str, labels: Mapping[str, str]) -> bool:
        """Whether the route follows this agreement: only ever its own namespace's."""
        if namespace != self.namespace:
            return False
        if not self.agreements and self.selector is None:
            return True
        if agreement in self.agreements:
            return True
        return self.selector is not None and self.selector.matches(labels)

    def wants(self, event: EventType) -> bool:
        return not self.suspend and event in self.events


def route_from_manifest(obj: Mapping[str, Any]) -> NotificationRoute:
    """The route of a manifest; SpecError naming every field that is wrong."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise SpecError.at("spec", "must be an object")
    problems: list[Problem] = []
    url, url_secret = spec.get("url"), None
    if url is not None and not _http_url(url):
        problems.append(Problem("spec.url", f"{url!r} must be an http:// or https:// URL"))
    if spec.get("urlFrom") is not None:
        try:
            url_secret = _secret_ref((spec["urlFrom"] or {}).get("secretKeyRef"),
                                     "spec.urlFrom.secretKeyRef")
        except SpecError as error:
            problems.extend(error.problems)
    if (url is None) == (url_secret is None) and not problems:
        problems.append(Problem("spec", "give exactly one of url and urlFrom"))
    headers: list[m.Header] = []
    for index, raw in enumerate(spec.get("headers") or []):
        try:
            headers.append(_header(raw, f"spec.headers[{index}]"))
        except SpecError as error:
            problems.extend(error.problems)
    events: list[EventType] = []
    for index, raw in enumerate(spec.get("events") or []):
        try:
            events.append(enum_value(EventType, raw, f"spec.events[{index}]"))
        except SpecError as error:
            problems.extend(error.problems)
    fmt = PayloadFormat.GENERIC
    try:
        fmt = enum_value(PayloadFormat, spec.get("format", "generic"), "spec.format")
        chosen = (selector(spec["agreementSelector"], "spec.agreementSelector")
                  if spec.get("agreementSelector") is not None else None)
    except SpecError as error:
        problems.extend(error.problems)
        chosen = None
    if problems:
        raise SpecError(problems)
    return NotificationRoute(
        namespace=str(meta.get("namespace") or "default"), name=str(meta.get("name") or ""),
        format=fmt, url=str(url) if url is not None else None, url_secret=url_secret,
        headers=tuple(headers), agreements=tuple(str(a) for a in spec.get("agreements") or ()),
        selector=chosen, events=frozenset(events) if events else frozenset(EventType),
        suspend=bool(spec.get("suspend", False)), uid=meta.get("uid"),
        generation=int(meta.get("generation") or 0))


def _http_url(value: object) -> bool:
    return (isinstance(value, str) and value.startswith(("http://", "https://"))
            and not any(c.isspace() for c in value) and len(value) > len("https://"))


def _secret_ref(raw: object, path: str) -> m.SecretRef:
    if not isinstance(raw, Mapping) or not raw.get("name") or not raw.get("key"):
        raise SpecError.at(path, "must name a Secret and a key: {name: ..., key: ...}")
    return m.SecretRef(str(raw["name"]), str(raw["key"]))


def _header(raw: object, path: str) -> m.Header:
    if not isinstance(raw, Mapping) or not raw.get("name"):
        raise SpecError.at(path, "must be {name, value} or {name, valueFrom}")
    name = str(raw["name"])
    if ("value" in raw) == ("valueFrom" in raw):
        raise SpecError.at(path, f"header {name}: give exactly one of value and valueFrom")
    if "value" in raw:
        return m.Header(name, value=str(raw["value"]))
    return m.Header(name, secret=_secret_ref((raw["valueFrom"] or {}).get("secretKeyRef"),
                                             f"{path}.valueFrom.secretKeyRef"))
