"""Render once per change: every document of the page, compressed and tagged, kept in memory.

A request reads the engine's current snapshot; only when that snapshot is a new one is the
page model rebuilt, and only when the model differs is anything rendered again. Requests in
between cost a dictionary look-up, whatever the traffic.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Generic, TypeVar

import jinja2
from markupsafe import Markup

from sla_operator.domain.model import Severity, State
from sla_operator.domain.statuspage import (
    PublicAgreement,
    PublicIncident,
    StatusPage,
    build_status_page,
    duration_text,
)
from sla_operator.domain.views import Snapshot
from sla_operator.statuspage.api import agreement_document, encode, incident_document, status_json
from sla_operator.statuspage.api_v2 import v2_bodies
from sla_operator.statuspage.badge import badge_svg
from sla_operator.statuspage.feed import atom_feed
from sla_operator.statuspage.text import html_id, human_time, utc_text

V = TypeVar("V")
HTML = "text/html; charset=utf-8"
JSON = "application/json"
ATOM = "application/atom+xml; charset=utf-8"
CSS = "text/css; charset=utf-8"
SVG = "image/svg+xml"
STATE_WORDS = {State.UP: "All services operational", State.DEGRADED: "Degraded performance",
               State.DOWN: "Service outage", State.MAINTENANCE: "Maintenance under way",
               State.UNKNOWN: "Status not known yet"}
ICONS = {State.UP: "✓", State.DEGRADED: "!", State.DOWN: "✕", State.MAINTENANCE: "⚙",
         State.UNKNOWN: "?"}
SEVERITY_WORDS = {Severity.P1.value: "critical", Severity.P2.value: "high",
                  Severity.P3.value: "medium", Severity.P4.value: "low"}


@dataclass(frozen=True)
class Document:
    body: bytes
    gzipped: bytes
    etag: str  # of the identity encoding; the gzip one adds "-gzip"
    content_type: str


def document(body: bytes, content_type: str) -> Document:
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Document(body, gzip.compress(body, compresslevel=1, mtime=0), f'"{digest}"', content_type)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("sla_operator.statuspage", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    environment.filters.update(iso=utc_text, human=human_time, duration=duration_text)
    environment.globals.update(state_words=STATE_WORDS, icons=ICONS, severity_words=SEVERITY_WORDS,
                               html_id=html_id)
    return environment


_STATIC = resources.files("sla_operator.statuspage").joinpath("static")
STATIC = {"page.css": document(_STATIC.joinpath("page.css").read_bytes(), CSS),
          "favicon.svg": document(_STATIC.joinpath("favicon.svg").read_bytes(), SVG)}


class _Parts(Generic[V]):
    """One rendered part per agreement or incident, made again only when its view changed.

    Compared by equality with the view it was made from, which is cheap: unchanged views share
    their bars and updates with the previous ones. Parts not used by a render are dropped."""

    def __init__(self) -> None:
        self._now: dict[tuple[str, str], tuple[object, V]] = {}
        self._before: dict[tuple[str, str], tuple[object, V]] = {}

    def get(self, key: tuple[str, str], view: object, make: Callable[[], V]) -> V:
        cached = self._now.get(key) or self._before.get(key)
        if cached is None or (cached[0] is not view and cached[0] != view):
            cached = (view, make())
        self._now[key] = cached
        return cached[1]

    def turn(self) -> None:
        self._before, self._now = self._now, {}


class Renderer:
    """The current documents of the page, rebuilt only when what they show has changed."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot
        environment = _environment()
        self._template = environment.get_template("page.html")
        self._agreement_template = environment.get_template("agreement.html")
        self._incident_template = environment.get_template("incident.html")
        self._agreement_html: _Parts[Markup] = _Parts()
        self._incident_html: _Parts[Markup] = _Parts()
        self._json: _Parts[str] = _Parts()
        self._source: Snapshot | None = None
        self.page: StatusPage | None = None
        self.documents: dict[str, Document] = {}
        self._badges: dict[tuple[str, str], Document] = {}
        self.renders = 0  # how often the page was rendered (tests and the benchmark read it)

    def current(self) -> dict[str, Document]:
        snapshot = self._snapshot()
        if snapshot is not self._source:
            self._source = snapshot
            page = build_status_page(snapshot)
            if page != self.page:
                self.render(page)
        return self.documents

    def render(self, page: StatusPage) -> None:
        self.page = page
        html = self._template.render(page=page, fragments=self._fragments(page),
                                     history=self._history(page)).encode()
        api = status_json(page, self._agreement_json, self._incident_json)
        self.documents = {"/": document(html, HTML), "/api/v1/status": document(api, JSON),
                          "/feed.atom": document(atom_feed(page), ATOM),
                          **{path: document(body, JSON) for path, body in v2_bodies(page).items()}}
        for parts in (self._agreement_html, self._incident_html, self._json):
            parts.turn()
        self._badges = {}
        self.renders += 1

    def _fragments(self, page: StatusPage) -> dict[tuple[str, str], Markup]:
        """Each agreement's HTML, rendered again only when that agreement changed."""
        return {(a.namespace, a.name): self._agreement_html.get(
            (a.namespace, a.name), a, lambda a=a: Markup(self._agreement_template.render(a=a)))
            for a in page.agreements}

    def _history(self, page: StatusPage) -> dict[tuple[str, str], Markup]:
        """Each incident's HTML in the history, rendered again only when it changed."""
        return {(i.namespace, i.name): self._incident_html.get(
            (i.namespace, i.name), i, lambda i=i: Markup(self._incident_template.render(i=i)))
            for i in page.incidents}

    def _agreement_json(self, agreement: PublicAgreement) -> str:
        return self._json.get(("agreement/" + agreement.namespace, agreement.name), agreement,
                              lambda: encode(agreement_document(agreement)))

    def _incident_json(self, incident: PublicIncident) -> str:
        return self._json.get(("incident/" + incident.namespace, incident.name), incident,
                              lambda: encode(incident_document(incident)))

    def badge(self, namespace: str, name: str) -> Document | None:
        self.current()
        cached = self._badges.get((namespace, name))
        if cached is None and self.page is not None:
            agreement = self.page.agreement(namespace, name)
            if agreement is None:
                return None
            cached = self._badges[(namespace, name)] = document(badge_svg(agreement), SVG)
        return cached

    @property
    def generated_at(self) -> datetime | None:
        return self.page.generated_at if self.page is not None else None
