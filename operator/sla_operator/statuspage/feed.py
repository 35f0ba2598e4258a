"""/feed.atom: one entry per public incident and per announced maintenance, newest first."""

from __future__ import annotations

from datetime import datetime

from feedgen.feed import FeedEntry, FeedGenerator

from sla_operator.domain.statuspage import PublicIncident, PublicWindow, StatusPage
from sla_operator.statuspage.text import html_id, human_time, xml_safe

FEED_ID = "tag:sla.dev,2026:status"
MAX_ENTRIES = 50


def atom_feed(page: StatusPage) -> bytes:
    feed = FeedGenerator()
    feed.id(FEED_ID)
    feed.title("Service status")
    feed.generator("sla-operator")
    feed.link(href="/", rel="alternate")
    feed.link(href="/feed.atom", rel="self")
    feed.updated(page.generated_at)
    # Entries are made for the newest 50 only: feedgen objects are not cheap.
    dated: list[tuple[datetime, PublicIncident | PublicWindow]] = [
        *((i.updated_at, i) for i in page.incidents), *((w.start, w) for w in page.maintenance)]
    dated.sort(key=lambda pair: pair[0], reverse=True)
    for _, item in dated[:MAX_ENTRIES]:
        entry = _incident_entry(item) if isinstance(item, PublicIncident) else _window_entry(item)
        feed.add_entry(entry, order="append")
    result: bytes = feed.atom_str(pretty=False)
    return result


def _incident_entry(incident: PublicIncident) -> FeedEntry:
    entry = FeedEntry()
    entry.id(f"tag:sla.dev,2026:incident/{incident.namespace}/{incident.name}")
    entry.title(xml_safe(f"{incident.service}: {incident.title}"))
    entry.updated(incident.updated_at)
    entry.published(incident.started_at)
    entry.link(href="/#" + html_id("incident", incident.namespace, incident.name), rel="alternate")
    lines = [f"{incident.severity} {incident.type}, impact {incident.impact}, {incident.state}",
             f"started {human_time(incident.started_at)}"]
    if incident.excluded_text is not None:
        lines.insert(1, incident.excluded_text)
    if incident.resolved_at is not None:
        lines.append(f"resolved {human_time(incident.resolved_at)}")
    lines += [f"{human_time(u.time)} [{u.state}] {u.message}" for u in incident.updates]
    # Plain text: feed readers show people's words as written, never as markup.
    entry.content(xml_safe("\n".join(lines)), type="text")
    return entry


def _window_entry(window: PublicWindow) -> FeedEntry:
    entry = FeedEntry()
    entry.id(f"tag:sla.dev,2026:maintenance/{window.namespace}/{window.name}/"
             f"{window.start:%Y%m%dT%H%M%SZ}")
    what = "Maintenance under way" if window.active else "Scheduled maintenance"
    entry.title(xml_safe(f"{what}: {window.description or window.name}"))
    entry.updated(window.start)
    entry.link(href="/#maintenance", rel="alternate")
    entry.content(xml_safe(f"{human_time(window.start)} to {human_time(window.end)}; affects "
                           + ", ".join(window.services)), type="text")
    return entry
