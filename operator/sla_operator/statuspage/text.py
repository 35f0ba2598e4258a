"""Untrusted text (incident titles and updates are written by people) made safe to embed.

HTML escaping is Jinja2's autoescape; XML (Atom, SVG) is escaped by its writers. What is left
here: characters XML 1.0 cannot hold at all, which would otherwise break a whole document.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids (controls, lone surrogates)."""
    return _NOT_XML.sub("\ufffd", text)


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC, whole seconds: the ``datetime`` of a <time> and the JSON times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
