"""/api/v2/*.json: Statuspage's public API v2 (API.md, "Statuspage-compatible API").

The documents come from ``domain.statuspage_v2``; this encodes them. People's words (incident
titles and updates) go out as JSON strings with ``<``, ``>`` and ``&`` escaped too, so a
document stays inert even where something reads it as HTML.
"""

from __future__ import annotations

import json
from typing import Any

from sla_operator.domain.statuspage import StatusPage
from sla_operator.domain.statuspage_v2 import ROUTES, v2_documents

PREFIX = "/api/v2/"
PATHS = tuple(PREFIX + route for route in ROUTES)
# Public data only, read by widgets on other sites: any origin may read it.
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                "Access-Control-Max-Age": "86400"}
_INERT = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                        "\u2028": "\\u2028", "\u2029": "\\u2029"})


def encode_inert(document: Any) -> bytes:
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_INERT).encode()


def v2_bodies(page: StatusPage) -> dict[str, bytes]:
    """Each route's body by its full path."""
    return {PREFIX + route: encode_inert(doc) for route, doc in v2_documents(page).items()}
