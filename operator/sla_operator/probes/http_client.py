"""The HTTP client HTTP probes share: one aiohttp session, a fresh connection per request.

Every request connects to an address that the policy admitted after resolution: the URL's
host is resolved here, checked, and the request goes to the IP with the original Host header
and TLS server name. aiohttp never resolves a name itself, so neither an IP literal nor a
redirect can slip past the policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from sla_operator.probes.policy import AddressPolicy, literal_address, resolve_allowed


class CertificateRecordingResponse(aiohttp.ClientResponse):
    """A response that keeps the peer certificate (DER) of the connection it came over.

    The connection itself is released as soon as an empty body is read, so the certificate is
    taken when the response starts.
    """

    peer_certificate: bytes | None = None

    async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is not None:
            self.peer_certificate = ssl_object.getpeercert(binary_form=True)
        return await super().start(connection)


class HttpClient:
    """An aiohttp session bound to one event loop; keep-alive off so every probe connects."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        connector = aiohttp.TCPConnector(force_close=True, limit=0, use_dns_cache=False)
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),
            response_class=CertificateRecordingResponse,
            auto_decompress=True,
            trust_env=False,
        )

    def usable_in(self, loop: asyncio.AbstractEventLoop) -> bool:
        return loop is self._loop and not self._session.closed

    async def aclose(self) -> None:
        await self._session.close()

    async def send(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        verify: bool,
        policy: AddressPolicy,
    ) -> CertificateRecordingResponse:
        """Send one request (no redirects followed) to the first admitted address that connects."""
        host = url.raw_host or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await resolve_allowed(host, port, policy)
        request_headers = CIMultiDict(headers)
        request_headers.setdefault("Host", url.host_port_subcomponent or host)
        tls_name = host if url.scheme == "https" and literal_address(host) is None else None
        last_error: aiohttp.ClientConnectorError | None = None
        for address in addresses:
            try:
                response = await self._session.request(
                    method,
                    url.with_host(address),
                    headers=request_headers,
                    data=body,
                    allow_redirects=False,
                    ssl=verify,
                    server_hostname=tls_name,
                )
            except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientConnectorSSLError):
                raise
            except aiohttp.ClientConnectorError as error:
                last_error = error
                continue
            assert isinstance(response, CertificateRecordingResponse)
            return response
        assert last_error is not None
        raise last_error
