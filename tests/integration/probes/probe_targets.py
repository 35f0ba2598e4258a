"""Real local servers for probe tests: HTTP(S), raw TCP behaviours, DNS over UDP, gRPC health."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BIG_BODY = b"HEAD" + b"a" * (2 << 20) + b"TAIL"


@dataclass(frozen=True)
class Certificate:
    cert_path: Path
    key_path: Path
    not_after: datetime.datetime

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    @property
    def key_pem(self) -> bytes:
        return self.key_path.read_bytes()


def make_certificate(directory: Path, name: str, valid_for: datetime.timedelta) -> Certificate:
    """A self-signed certificate for localhost, 127.0.0.1 and ::1."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    not_after = now + valid_for
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_path, key_path, not_after)


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


# ---------------------------------------------------------------- DNS


class DnsZone(asyncio.DatagramProtocol):
    """A tiny authoritative UDP DNS server: known records, NXDOMAIN otherwise.

    Names under ``silent.test.`` get no reply at all, to exercise timeouts; names under
    ``broken.test.`` get SERVFAIL.
    """

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records
        self.queries = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queries += 1
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().lower()
        if name.endswith("silent.test."):
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        type_name = dns.rdatatype.to_text(question.rdtype)
        if name.endswith("broken.test."):
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, type_name) in self.records:
            rrset = dns.rrset.from_text_list(name, 60, "IN", type_name, self.records[(name, type_name)])
            response.answer.append(rrset)
        elif not any(known == name for known, _type in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)
