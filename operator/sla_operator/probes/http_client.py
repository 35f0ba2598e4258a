"""The HTTP client HTTP probes share: a fresh connection per request, to an admitted address.

Every request connects to an address that the policy admitted after resolution: the URL's
host is resolved here, checked, and the request goes to the IP with the original Host header
and TLS server name. Nothing below resolves a name itself, so neither an IP literal nor a
redirect can slip past the policy. The exchange itself is probes/http_wire.py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from functools import cache

from multidict import CIMultiDict
from yarl import URL

from sla_operator.probes.base import USER_AGENT
from sla_operator.probes.http_wire import HttpResponse, connect, request_bytes
from sla_operator.probes.policy import AddressPolicy, literal_address, resolve_allowed

DEFAULT_HEADERS = (
    ("Accept", "*/*"),
    # What the probe decodes itself (probes/http_wire.py), bounded by the body limit.
    ("Accept-Encoding", "gzip, deflate"),
    ("User-Agent", USER_AGENT),
)


@cache
def _ssl_context(verify: bool) -> ssl.SSLContext:
    """One context per mode for the whole process (loading the CA store is costly)."""
    if verify:
        context = ssl.create_default_context()
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.options |= ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(("http/1.1",))
    return context


class HttpClient:
    """Probes' HTTP requests in one event loop; keep-alive off so every probe connects."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._closed = False
        # IP-literal hosts the policy admitted: parsing and checking them again on every
        # probe was a tenth of its CPU. Names are resolved every time (DNS answers change).
        self._literal_policy: AddressPolicy | None = None
        self._literals: dict[str, list[str]] = {}

    def usable_in(self, loop: asyncio.AbstractEventLoop) -> bool:
        return loop is self._loop and not self._closed

    async def aclose(self) -> None:
        # Connections are owned by their probe and closed when it ends: nothing is pooled.
        self._closed = True

    async def send(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        verify: bool,
        policy: AddressPolicy,
        body_limit: int,
    ) -> HttpResponse:
        """Send one request (no redirects followed) to the first admitted address that connects.

        The response's body is read up to ``body_limit`` bytes (decoded). Connect errors move
        on to the next address; TLS errors and the last connect error are raised as they are.
        """
        host = url.raw_host or ""
        https = url.scheme == "https"
        port = url.port or (443 if https else 80)
        addresses = await self._admitted(host, port, policy)
        request_headers: CIMultiDict[str] = CIMultiDict(headers)
        request_headers.setdefault("Host", url.host_port_subcomponent or host)
        for name, value in DEFAULT_HEADERS:
            request_headers.setdefault(name, value)
        if body:
            request_headers.setdefault("Content-Type", "application/octet-stream")
        request = request_bytes(method, url.raw_path_qs or "/", request_headers, body)
        ssl_context = _ssl_context(verify) if https else None
        tls_name = host if https and literal_address(host) is None else None
        last_error: OSError | None = None
        for address in addresses:
            try:
                connection = await connect(
                    self._loop, address, port, request,
                    ssl_context=ssl_context,
                    server_hostname=tls_name or address,
                    body_limit=body_limit,
                    head_only=method == "HEAD",
                )
            except ssl.SSLError:
                raise
            except OSError as error:
                last_error = error
                continue
            return await connection.response()
        assert last_error is not None
        try:
            raise last_error
        finally:
            last_error = None  # this frame, in the error's traceback, must not hold it: a cycle

    async def _admitted(self, host: str, port: int, policy: AddressPolicy) -> list[str]:
        if policy is not self._literal_policy:
            self._literal_policy, self._literals = policy, {}
        addresses = self._literals.get(host)
        if addresses is None:
            addresses = await resolve_allowed(host, port, policy)
            if literal_address(host) is not None:
                self._literals[host] = addresses
        return addresses
