"""Render once per change: every document of the page, compressed and tagged, kept in memory.

A request reads the engine's current snapshot; only when that snapshot is a new one is the
page model rebuilt, and only when the model differs is anything rendered again. Requests in
between cost a dictionary look-up, whatever the traffic.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

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
from sla_operator.statuspage.api import status_document
from sla_operator.statuspage.badge import badge_svg
from sla_operator.statuspage.feed import atom_feed
from sla_operator.statuspage.text import human_time, utc_text

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
    return Document(body, gzip.compress(body, compresslevel=5, mtime=0), f'"{digest}"', content_type)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("sla_operator.statuspage", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    environment.filters.update(iso=utc_text, human=human_time, duration=duration_text)
    environment.globals.update(state_words=STATE_WORDS, icons=ICONS, severity_words=SEVERITY_WORDS)
    return environment


_STATIC = resources.files("sla_operator.statuspage").joinpath("static")
STATIC = {"page.css": document(_STATIC.joinpath("page.css").read_bytes(), CSS),
          "favicon.svg": document(_STATIC.joinpath("favicon.svg").read_bytes(), SVG)}


class Renderer:
    """The current documents of the page, rebuilt only when what they show has changed."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot
        environment = _environment()
        self._template = environment.get_template("page.html")
        self._agreement_template = environment.get_template("agreement.html")
        self._fragment_cache: dict[tuple[str, str], tuple[PublicAgreement, Markup]] = {}
        self._incident_template = environment.get_template("incident.html")
        self._incident_cache: dict[tuple[str, str], tuple[PublicIncident, Markup]] = {}
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
        api = json.dumps(status_document(page), ensure_ascii=False, separators=(",", ":")).encode()
        self.documents = {"/": document(html, HTML), "/api/v1/status": document(api, JSON),
                          "/feed.atom": document(atom_feed(page), ATOM)}
        self._badges = {}
        self.renders += 1

    def _fragments(self, page: StatusPage) -> dict[tuple[str, str], Markup]:
        """Each agreement's HTML, rendered again only when that agreement changed."""
        fragments = {}
        for agreement in page.agreements:
            key = (agreement.namespace, agreement.name)
            cached = self._fragment_cache.get(key)
            if cached is None or cached[0] != agreement:
                cached = (agreement, Markup(self._agreement_template.render(a=agreement)))
            fragments[key] = cached[1]
            self._fragment_cache[key] = cached
        self._fragment_cache = {k: v for k, v in self._fragment_cache.items() if k in fragments}
        return fragments

    def _history(self, page: StatusPage) -> dict[tuple[str, str], Markup]:
        """Each incident's HTML in the history, rendered again only when it changed."""
        fragments = {}
        for incident in page.incidents:
            key = (incident.namespace, incident.name)
            cached = self._incident_cache.get(key)
            if cached is None or cached[0] != incident:
                cached = (incident, Markup(self._incident_template.render(i=incident)))
            fragments[key] = cached[1]
            self._incident_cache[key] = cached
        self._incident_cache = {k: v for k, v in self._incident_cache.items() if k in fragments}
        return fragments

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
