"""The context every probe runs in: the address policy, Secrets, the shared HTTP client.

The failure and outcome types are in ``probes/outcome.py``, a leaf that the HTTP client and
the address policy import too, so no import runs in a circle back here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sla_operator import __version__

if TYPE_CHECKING:
    from sla_operator.probes.http_client import HttpClient
    from sla_operator.probes.policy import AddressPolicy


USER_AGENT = f"sla-operator/{__version__}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def user_agent(location: str | None) -> str:
    """What HTTP probes call themselves; with a location, which one, so that a service's
    logs show where a probe came from."""
    return USER_AGENT if location is None else f"{USER_AGENT} (location {location})"


@dataclass(eq=False)
class ProbeContext:
    """Where probes of one agreement run: the address policy and how to read its Secrets.

    The context also holds the HTTP client shared by its probes; ``aclose()`` releases it
    (it is created again on next use, so closing is always safe).
    """

    policy: AddressPolicy
    resolve_secret: Callable[[str, str], Awaitable[str]]
    """(secret name, key) -> value, read in the agreement's namespace."""
    max_body_bytes: int = 1 << 20
    """HTTP bodies are read up to this many bytes; the body regex sees what was read."""
    now: Callable[[], datetime] = utc_now
    """Wall clock for ProbeResult.time."""
    user_agent: str = USER_AGENT
    """The User-Agent of HTTP probes (unless the probe's headers set one)."""
    body_searches: int = 2
    """bodyRegex searches of this context (one namespace) running at once: the search
    threads are shared, and one namespace's slow patterns must not hold them all."""
    _http: HttpClient | None = field(default=None, init=False, repr=False)
    _searches: asyncio.Semaphore | None = field(default=None, init=False, repr=False)

    def body_search_slot(self) -> asyncio.Semaphore:
        """Held while one of this context's bodies is searched (see ``body_searches``)."""
        if self._searches is None:
            self._searches = asyncio.Semaphore(self.body_searches)
        return self._searches

    def http_client(self) -> HttpClient:
        """The HTTP client of this context in the running event loop."""
        from sla_operator.probes.http_client import HttpClient

        loop = asyncio.get_running_loop()
        if self._http is None or not self._http.usable_in(loop):
            self._http = HttpClient(loop)
        return self._http

    async def aclose(self) -> None:
        """Close the shared HTTP client, if any."""
        client, self._http = self._http, None
        if client is not None:
            await client.aclose()
