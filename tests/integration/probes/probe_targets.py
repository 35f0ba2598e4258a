"""Real local servers for probe tests: HTTP(S), raw TCP behaviours, DNS over UDP, gRPC health."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from certificates import Certificate
from dns_target import DnsZone
from grpc_health.v1 import _async as health_async

from sla_operator.domain.model import ProbeResult

BIG_BODY = b"HEAD" + b"a" * (2 << 20) + b"TAIL"


# ---------------------------------------------------------------- HTTP


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]


def http_app(seen: list[SeenRequest]) -> web.Application:
    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        seen.append(SeenRequest(request.method, request.path, dict(request.headers)))
        return await handler(request)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text='{"status":"ok"}')

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status page")

    async def redirect(request: web.Request) -> web.Response:
        target = request.query.get("to", "/ok")
        code = int(request.query.get("code", "302"))
        return web.Response(status=code, headers={"Location": target})

    async def loop_redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/loop"})

    async def method(request: web.Request) -> web.Response:
        return web.Response(text=f"method={request.method} body={await request.text()}")

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        while True:
            await response.write(b"x")
            await asyncio.sleep(0.05)

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=BIG_BODY)

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response()

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application(middlewares=[record])
    app.router.add_get("/ok", ok)
    app.router.add_get("/status/{code}", status)
    app.router.add_route("*", "/redirect", redirect)
    app.router.add_get("/loop", loop_redirect)
    app.router.add_route("*", "/method", method)
    app.router.add_get("/drip", drip)
    app.router.add_get("/big", big)
    app.router.add_get("/hang", hang)
    app.router.add_get("/empty", empty)
    return app


# ---------------------------------------------------------------- raw TCP


@dataclass
class RawServer:
    """An asyncio TCP server that counts the connections it accepted."""

    host: str
    port: int = 0
    accepted: int = 0
    server: asyncio.Server | None = field(default=None, repr=False)
    writers: list[asyncio.StreamWriter] = field(default_factory=list, repr=False)

    async def start(
        self, behaviour: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ) -> RawServer:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            self.writers.append(writer)
            try:
                await behaviour(reader, writer)
            except (ConnectionError, asyncio.CancelledError):
                return
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, self.host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()


async def answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02 not http at all\r\n\r\n")
    await writer.drain()


async def reset_mid_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"partial" * 10)
    await writer.drain()
    # SO_LINGER with a zero timeout turns close() into a TCP reset.
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


# ---------------------------------------------------------------- shared by the tests

SECRETS = {("probe-auth", "token"): "Bearer s3cr3t-t0ken-value"}


async def read_secret(name: str, key: str) -> str:
    return SECRETS[(name, key)]


Probe = Callable[..., Awaitable[ProbeResult]]


@dataclass
class CertificateSet:
    self_signed: Certificate
    expiring: Certificate


@dataclass
class HttpTarget:
    base: str
    port: int
    seen: list[SeenRequest]

    def url(self, path: str) -> str:
        return self.base + path


async def serve_http(
    host: str, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, HttpTarget]:
    seen: list[SeenRequest] = []
    runner = web.AppRunner(http_app(seen), handler_cancellation=True, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    scheme = "https" if ssl_context else "http"
    shown_host = f"[{host}]" if ":" in host else host
    return runner, HttpTarget(f"{scheme}://{shown_host}:{port}", port, seen)


def server_ssl_context(certificate: Certificate) -> ssl.SSLContext:
    ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ssl_context.load_cert_chain(certificate.cert_path, certificate.key_path)
    return ssl_context


@dataclass
class DnsServer:
    address: str
    zone: DnsZone


@dataclass
class GrpcServer:
    port: int
    health: health_async.HealthServicer
