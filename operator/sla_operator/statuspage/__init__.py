"""The public status page: HTML, JSON, Atom and badges, rendered from the engine's snapshot."""

from sla_operator.statuspage.app import status_app

__all__ = ["status_app"]
