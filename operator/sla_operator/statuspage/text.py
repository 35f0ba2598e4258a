"""Untrusted text (incident titles and updates are written by people) made safe to embed.

HTML escaping is Jinja2's autoescape; XML (Atom, SVG) is escaped by its writers. What is left
here: characters XML 1.0 cannot hold at all, which would otherwise break a whole document.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ZERO = timedelta(0)
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids (controls, lone surrogates)."""
    return _NOT_XML.sub("\ufffd", text)


def html_id(kind: str, namespace: str, name: str) -> str:
    """The HTML id (and link fragment) of an object on the page: one per object. Namespaces and
    names hold only a-z, 0-9, "-" and "." (DNS names), never "_": joined with "-", namespace
    a-b name c and namespace a name b-c would share an id."""
    return f"{kind}-{namespace}_{name}"


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC, whole seconds: the ``datetime`` of a <time> and the JSON times."""
    m = moment if moment.utcoffset() == _ZERO else moment.astimezone(UTC)
    # Formatted by hand: strftime is most of the time a re-render takes.
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def human_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
