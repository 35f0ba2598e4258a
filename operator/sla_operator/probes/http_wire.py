"""One HTTP/1.1 exchange over one new connection: an asyncio Protocol and the llhttp parser.

An HTTP probe is one request on a fresh connection that is closed afterwards, so a general
client (connection pools, cookie jars, stream readers, request and response objects built
for reuse) costs far more CPU than the exchange itself. This module writes the request in
one buffer on ``loop.create_connection`` and parses the answer with ``httptools`` (Node.js'
llhttp, in C) from the protocol's ``data_received``: no task, stream reader or timer per
probe.

Why httptools and not aiohttp's own C parser: aiohttp's parser is internal API
(``aiohttp._http_parser``) that changes between releases and feeds aiohttp's StreamReader,
whose flow-control and buffering are what this module avoids; httptools is a small, stable,
callback API over the same llhttp, with wheels for CPython on Linux and macOS.

What the module guarantees:

- the body is read up to ``body_limit`` bytes *after* decoding (gzip, deflate: what
  ``Accept-Encoding`` asks for), so a compression bomb stops at the bound; the rest is never
  read and the connection is closed;
- bodies delimited by Content-Length, chunked, or the end of the connection are read; a
  connection that ends before its declared body is a failure;
- the header section is bounded (``MAX_HEADER_BYTES``); a response that is not HTTP, or a
  connection closed before the headers end, fails with a short message;
- cancelling (the probe's timeout) closes the connection at once.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from typing import Final, cast

import httptools
from multidict import CIMultiDict

from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.probes.outcome import ProbeFailure

MAX_HEADER_BYTES: Final = 64 * 1024
"""A response whose status line and headers take more than this fails."""

INVALID_RESPONSE: Final = "invalid HTTP response"
CLOSED_BEFORE_RESPONSE: Final = "connection closed by the server before a complete response"
LOST_IN_BODY: Final = "connection lost while reading the response body"
HEADERS_TOO_LARGE: Final = f"HTTP response header section over {MAX_HEADER_BYTES // 1024} KiB"

_PROTOCOL: Final = FailureReason.PROTOCOL  # an answer that is not HTTP as it should be
_CONNECT: Final = FailureReason.CONNECT  # a connection that ended before the answer did

# Requests whose empty body goes without Content-Length, as most clients do.
_BODYLESS_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class _Decoder:
    """gzip or deflate decoding that never produces more than the caller asks for."""

    __slots__ = ("_gzip", "_inflate")

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._inflate: zlib._Decompress | None = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        )

    def decode(self, data: bytes, limit: int) -> bytes:
        if self._inflate is None:
            # "deflate" is meant to be zlib-wrapped, but many servers send raw deflate; tell
            # them apart by the zlib header's compression method, as browsers do.
            raw = bool(data) and (data[0] & 0x0F) != 8
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        try:
            return self._inflate.decompress(data, limit)
        except zlib.error:
            encoding = "gzip" if self._gzip else "deflate"
            raise ProbeFailure(FailureReason.PROTOCOL, f"invalid {encoding} response body") from None


class HttpResponse:
    """Status, reason and headers of one response; the (bounded, decoded) body via ``read``."""

    __slots__ = ("_exchange", "headers", "peer_certificate", "reason", "status")

    def __init__(self, exchange: HttpExchange, status: int, reason: str,
                 headers: CIMultiDict[str], peer_certificate: bytes | None) -> None:
        self._exchange = exchange
        self.status = status
        self.reason = reason
        self.headers = headers
        self.peer_certificate = peer_certificate
        """The server's certificate (DER) on an https connection, verified or not."""

    @property
    def charset(self) -> str | None:
        """The charset parameter of Content-Type, if any."""
        content_type = self.headers.get("Content-Type")
        if not content_type:
            return None
        for parameter in content_type.split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"') or None
        return None

    async def read(self) -> bytes:
        """The body, decoded and cut at the exchange's body limit."""
        return await self._exchange.body()

    def close(self) -> None:
        """Close the connection (the rest of the body is never read)."""
        self._exchange.release()


class HttpExchange(asyncio.Protocol):
    """One request written on connect, one response parsed as it arrives.

    ``response()`` waits for the status line and headers; ``body()`` for the end of the body
    or the body limit. Every wait closes the connection when cancelled.
    """

    __slots__ = (
        "_body", "_body_limit", "_body_size", "_complete", "_decoder", "_done", "_error", "_failed",
        "_head_done", "_head_only", "_header_bytes", "_headers", "_parser", "_reason",
        "_request", "_response", "_until_eof", "_waiter", "transport",
    )

    def __init__(self, request: bytes, body_limit: int, head_only: bool) -> None:
        self._request = request
        self._body_limit = body_limit
        self._head_only = head_only  # the answer to HEAD has no body, whatever it declares
        self._parser: httptools.HttpResponseParser | None = None
        self.transport: asyncio.Transport | None = None
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._reason = b""
        self._header_bytes = 0
        self._head_done = False
        self._response: HttpResponse | None = None
        self._until_eof = False
        self._decoder: _Decoder | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._done = False  # the body is complete or cut at the limit
        self._complete = False  # the whole response arrived
        self._error: BaseException | None = None  # until raised (see _raised)
        self._failed = False
        self._waiter: asyncio.Future[None] | None = None

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, only alike
        self.transport = cast(asyncio.Transport, transport)
        # The parser calls back into this exchange, a cycle the collector alone could free;
        # it lives only while connected (connection_lost drops it), and only if connected.
        self._parser = httptools.HttpResponseParser(self)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self._done or self._failed:
            return
        if not self._head_done:
            self._header_bytes += len(data)
        try:
            self._parser.feed_data(data)  # type: ignore[union-attr]  # set while connected
        except httptools.HttpParserError as error:
            # An error raised by one of the callbacks below is carried through the parser.
            cause = error.__context__
            self._fail(cause if isinstance(cause, ProbeFailure)
                       else ProbeFailure(_PROTOCOL, INVALID_RESPONSE))
            return
        except ProbeFailure as failure:
            self._fail(failure)
            return
        if not self._head_done and self._header_bytes > MAX_HEADER_BYTES:
            self._fail(ProbeFailure(_PROTOCOL, HEADERS_TOO_LARGE))

    def eof_received(self) -> bool:
        if self._head_done and self._until_eof and not self._done:
            self._complete = True
            self._finish()
        return False  # the transport closes itself; connection_lost says what was missing

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._parser = None
        if self._done or self._failed:
            return
        if self._head_done and self._until_eof and exc is None:
            self._complete = True
            self._finish()
        elif not self._head_done:
            self._fail(exc if isinstance(exc, OSError)
                       else ProbeFailure(_CONNECT, CLOSED_BEFORE_RESPONSE))
        else:
            self._fail(ProbeFailure(_CONNECT, LOST_IN_BODY))

    # ---------------------------------------------------------------- httptools callbacks

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("latin-1"), value.decode("utf-8", "replace"))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()  # type: ignore[union-attr]  # it is calling
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self._headers = CIMultiDict()
            self._reason = b""
            return
        self._head_done = True
        headers = self._headers
        transfer = headers.get("Transfer-Encoding", "").lower()
        self._until_eof = (
            "Content-Length" not in headers and "chunked" not in transfer
            and status not in (204, 304) and not self._head_only
        )
        encoding = headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = _Decoder(gzip=encoding != "deflate")
        certificate = None
        if self.transport is not None:
            ssl_object = self.transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                certificate = ssl_object.getpeercert(binary_form=True)
        self._response = HttpResponse(self, status, self._reason.decode("utf-8", "replace"),
                                      headers, certificate)
        if self._head_only:
            self._complete = True
            self._finish()
        elif self._body_limit <= 0:
            self._finish()
        self._wake()

    def on_body(self, data: bytes) -> None:
        if self._done:
            return
        remaining = self._body_limit - self._body_size
        if self._decoder is not None:
            data = self._decoder.decode(data, remaining)
        elif len(data) > remaining:
            data = data[:remaining]
        self._body.append(data)
        self._body_size += len(data)
        if self._body_size >= self._body_limit:
            self._finish()
            self.close()  # the rest is never read

    def on_message_complete(self) -> None:
        if self._head_done and not self._done:
            self._complete = True
            self._finish()

    # ---------------------------------------------------------------- waiting

    async def response(self) -> HttpResponse:
        """The response once its headers arrived; raises what ended the exchange before."""
        while self._response is None:
            if self._failed:
                raise self._raised()
            await self._wait()
        return self._response

    async def body(self) -> bytes:
        while not self._done:
            if self._failed:
                raise self._raised()
            await self._wait()
        return b"".join(self._body)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        except BaseException:
            self.close()
            raise
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._wake()

    def _raised(self) -> BaseException:
        """What ended the exchange, to be raised, and no longer held here: its traceback
        holds the frame that raises it, and with it this exchange, so holding it as well
        would make a cycle only the collector frees."""
        error, self._error = self._error, None
        return error or ProbeFailure(_CONNECT, CLOSED_BEFORE_RESPONSE)

    def _fail(self, error: BaseException) -> None:
        if not self._failed:
            self._failed = True
            self._error = error
        self.close()
        self._wake()

    def release(self) -> None:
        """Close, and let go of the response: the response and this exchange refer to each
        other, and once its reader is done the cycle ends here, so both go by refcount."""
        self._response = None
        self.close()

    def close(self) -> None:
        transport = self.transport
        if transport is None:
            return
        if self._complete:
            transport.close()  # a complete exchange: a clean close (TLS close_notify)
        else:
            transport.abort()  # unread data or a hung peer: drop the connection now


def request_bytes(method: str, target: str, headers: CIMultiDict[str], body: bytes | None) -> bytes:
    """The request's bytes: request line, headers (Connection: close added), body."""
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers.items():
        if name.lower() not in ("connection", "content-length"):
            lines.append(f"{name}: {value}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    elif method not in _BODYLESS_METHODS:
        lines.append("Content-Length: 0")
    lines.append("Connection: close")
    lines.append("\r\n")
    head = "\r\n".join(lines).encode("utf-8")
    return head + body if body else head


async def connect(
    loop: asyncio.AbstractEventLoop,
    address: str,
    port: int,
    request: bytes,
    *,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    body_limit: int,
    head_only: bool,
) -> HttpExchange:
    """Connect to ``address`` (an IP) and send ``request``; ``response()`` of the result waits
    for the answer. Connect and TLS errors (OSError, ssl.SSLError) are raised as they are."""
    protocol = HttpExchange(request, body_limit, head_only)
    await loop.create_connection(
        lambda: protocol, address, port, ssl=ssl_context,
        server_hostname=server_hostname if ssl_context is not None else None,
    )
    return protocol
