"""The http probe's HTTP/1.1 exchange against raw servers: body framings, content encodings,
malformed answers, and connections closed when a probe is cancelled. Each test runs on the
standard asyncio loop and on uvloop (the operator's default)."""

from __future__ import annotations

import asyncio
import gc
import gzip
import os
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace

import pytest
import uvloop
from probe_targets import CertificateSet, Probe, RawServer, server_ssl_context

from sla_operator.domain.model import Header, HttpProbe
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.policy import AddressPolicy

pytestmark = pytest.mark.filterwarnings(
    "ignore:Overriding the \"event_loop_policy\" fixture:DeprecationWarning")

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoopPolicy]:
    if request.param == "uvloop":
        yield uvloop.EventLoopPolicy()
    else:
        yield asyncio.DefaultEventLoopPolicy()


@dataclass
class Requests:
    """The request heads a raw server received, and whether each connection saw its end."""

    heads: list[bytes] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


def answering(*parts: bytes, then: str = "close", requests: Requests | None = None) -> Behaviour:
    """A server that reads the request head, writes ``parts`` and then closes, hangs, or
    waits for the client to close (``then``: "close", "hang", "wait")."""

    async def behaviour(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if requests is not None:
            requests.heads.append(head)
        for part in parts:
            writer.write(part)
            await writer.drain()
        if then == "hang":
            await asyncio.sleep(3600)
        elif then == "wait":
            while await reader.read(65536):
                pass
            if requests is not None:
                requests.ended.set()

    return behaviour


async def serve(raw_servers: list[RawServer], behaviour: Behaviour) -> str:
    server = await RawServer("127.0.0.1").start(behaviour)
    raw_servers.append(server)
    return f"http://127.0.0.1:{server.port}/"


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


# ---------------------------------------------------------------- body framings


async def test_a_chunked_body_is_read_to_its_last_chunk(probe: Probe, raw_servers: list[RawServer]) -> None:
    url = await serve(raw_servers, answering(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunked(b"first ", b"second ", b"last"), then="hang"))
    result = await probe(HttpProbe(url=url, body_regex="^first second last$"))
    assert (result.ok, result.message) == (True, "200 OK")


async def test_a_body_delimited_by_the_end_of_the_connection_is_read(
        probe: Probe, raw_servers: list[RawServer]) -> None:
    url = await serve(raw_servers, answering(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ", b"it"))
    result = await probe(HttpProbe(url=url, body_regex="^all of it$"))
    assert (result.ok, result.message) == (True, "200 OK")


async def test_a_body_cut_short_fails(probe: Probe, raw_servers: list[RawServer]) -> None:
    by_length = await serve(raw_servers, answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"))
    by_chunks = await serve(raw_servers, answering(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"))
    for url in (by_length, by_chunks):
        result = await probe(HttpProbe(url=url))
        assert (result.ok, result.message) == (False, "connection lost while reading the response body")


async def test_a_body_reaching_the_bound_ends_the_read_without_waiting_for_the_rest(
        probe: Probe, raw_servers: list[RawServer], context: ProbeContext) -> None:
    requests = Requests()
    url = await serve(raw_servers, answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", b"x" * 2048, then="wait",
        requests=requests))
    small = replace(context, max_body_bytes=1024)
    result = await probe(HttpProbe(url=url, body_regex="^x{1024}$"), 30, small)
    assert (result.ok, result.message) == (True, "200 OK")
    await requests.ended.wait()  # the probe closed the connection: the server saw its end


async def test_the_answer_to_head_has_no_body_whatever_it_declares(
        probe: Probe, raw_servers: list[RawServer]) -> None:
    url = await serve(raw_servers, answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", then="hang"))
    result = await probe(HttpProbe(url=url, method="HEAD"), 30)
    assert (result.ok, result.message) == (True, "200 OK")


async def test_an_interim_100_continue_is_skipped(probe: Probe, raw_servers: list[RawServer]) -> None:
    url = await serve(raw_servers, answering(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"))
    result = await probe(HttpProbe(url=url, body_regex="^done$"))
    assert (result.ok, result.message) == (True, "201 Created")


# ---------------------------------------------------------------- content encodings


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_a_compressed_body_is_decoded_before_the_regex_sees_it(
        probe: Probe, raw_servers: list[RawServer], encoding: str) -> None:
    text = b'{"status":"ok","padding":"' + b"p" * 5000 + b'"}'
    if encoding == "gzip":
        body = gzip.compress(text)
    else:
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS if encoding == "raw-deflate" else zlib.MAX_WBITS)
        body = compressor.compress(text) + compressor.flush()
    name = encoding.removeprefix("raw-").encode()
    url = await serve(raw_servers, answering(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n" % (name, len(body)),
        body))
    result = await probe(HttpProbe(url=url, body_regex='^\\{"status":"ok".*"\\}$'))
    assert (result.ok, result.message) == (True, "200 OK")


async def test_a_gzip_bomb_is_decoded_only_up_to_the_body_bound(
        probe: Probe, raw_servers: list[RawServer], context: ProbeContext) -> None:
    bomb = gzip.compress(b"a" * (256 << 20), compresslevel=9)  # 256 MiB in about 250 KiB
    url = await serve(raw_servers, answering(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb), bomb))
    small = replace(context, max_body_bytes=4096)
    # The regex sees exactly the bound's worth of decoded bytes, no more.
    result = await probe(HttpProbe(url=url, body_regex="^a{4096}$"), 30, small)
    assert (result.ok, result.message) == (True, "200 OK")


async def test_a_corrupt_gzip_body_fails_with_a_clear_message(
        probe: Probe, raw_servers: list[RawServer]) -> None:
    body = b"\x1f\x8b\x08\x00" + b"not really gzip" * 4
    url = await serve(raw_servers, answering(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body), body))
    result = await probe(HttpProbe(url=url))
    assert (result.ok, result.message) == (False, "invalid gzip response body")


# ---------------------------------------------------------------- malformed answers


async def test_a_malformed_status_line_is_an_invalid_response(
        probe: Probe, raw_servers: list[RawServer]) -> None:
    url = await serve(raw_servers, answering(b"HTTP/1.1 two hundred OK\r\nContent-Length: 0\r\n\r\n"))
    result = await probe(HttpProbe(url=url))
    assert (result.ok, result.message) == (False, "invalid HTTP response")


async def test_a_header_section_over_64_kib_fails_without_waiting_for_its_end(
        probe: Probe, raw_servers: list[RawServer]) -> None:
    endless = b"X-Filler: " + b"f" * 1000 + b"\r\n"
    url = await serve(raw_servers, answering(b"HTTP/1.1 200 OK\r\n", endless * 100, then="hang"))
    result = await probe(HttpProbe(url=url), 30)
    assert (result.ok, result.message) == (False, "HTTP response header section over 64 KiB")


async def test_a_server_closing_before_answering_fails(probe: Probe, raw_servers: list[RawServer]) -> None:
    silent = await serve(raw_servers, answering())
    half_head = await serve(raw_servers, answering(b"HTTP/1.1 200 OK\r\nContent-Len"))
    for url in (silent, half_head):
        result = await probe(HttpProbe(url=url))
        assert (result.ok, result.message) == (
            False, "connection closed by the server before a complete response")


# ---------------------------------------------------------------- the request


async def test_the_request_closes_the_connection_and_says_who_asks(
        probe: Probe, raw_servers: list[RawServer]) -> None:
    requests = Requests()
    url = await serve(raw_servers, answering(b"HTTP/1.1 204 No Content\r\n\r\n", requests=requests))
    headers = (Header(name="X-Twice", value="one"), Header(name="x-twice", value="two"),
               Header(name="Connection", value="keep-alive"))
    result = await probe(HttpProbe(url=url + "path?q=1#fragment", headers=headers))
    assert (result.ok, result.message) == (True, "204 No Content")
    head = requests.heads[0].decode()
    lines = head.split("\r\n")
    assert lines[0] == "GET /path?q=1 HTTP/1.1"
    assert "X-Twice: one" in lines and "x-twice: two" in lines
    assert "Connection: close" in lines and "Connection: keep-alive" not in lines
    assert "Accept-Encoding: gzip, deflate" in lines
    assert any(line.startswith("User-Agent: sla-operator/") for line in lines)


async def test_a_post_body_goes_with_its_length(probe: Probe, raw_servers: list[RawServer]) -> None:
    requests = Requests()
    url = await serve(raw_servers, answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                                             requests=requests))
    result = await probe(HttpProbe(url=url, method="POST", body="héllo"))
    assert result.ok, result.message
    assert "Content-Length: 6" in requests.heads[0].decode().split("\r\n")


# ---------------------------------------------------------------- cancellation


def open_sockets() -> int:
    fds = os.listdir("/proc/self/fd")
    count = 0
    for fd in fds:
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(60):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("stage", ["headers", "body", "tls-handshake"])
async def test_a_probe_that_times_out_leaves_no_open_connection(
        probe: Probe, raw_servers: list[RawServer], stage: str) -> None:
    ended = asyncio.Event()

    async def behaviour(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if stage != "tls-handshake":
            await reader.readuntil(b"\r\n\r\n")
        if stage == "body":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
        while await reader.read(65536):  # a TLS client hello, then nothing until the end
            pass
        ended.set()

    url = await serve(raw_servers, behaviour)
    if stage == "tls-handshake":
        url = url.replace("http://", "https://")
    before = open_sockets()
    result = await probe(HttpProbe(url=url), 0.3)
    assert (result.ok, result.message) == (False, "timeout after 300ms")
    await ended.wait()  # the server saw the connection end ...
    await until(lambda: open_sockets() <= before)  # ... and no socket of the probe stays open


async def test_a_changed_policy_applies_to_an_address_probed_before(
        probe: Probe, raw_servers: list[RawServer], context: ProbeContext) -> None:
    url = await serve(raw_servers, answering(b"HTTP/1.1 204 No Content\r\n\r\n"))
    allowed = await probe(HttpProbe(url=url))
    context.policy = AddressPolicy.from_cidrs(deny=["127.0.0.1/32"], allow=[])
    denied = await probe(HttpProbe(url=url))
    assert (allowed.ok, denied.ok, denied.message) == (True, False, "address 127.0.0.1 denied by policy")


async def test_a_body_ended_by_the_tls_connection_is_read_with_its_certificate(
        probe: Probe, certificates: CertificateSet) -> None:
    async def behaviour(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nsecret ")
        writer.write(b"sauce")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(behaviour, "127.0.0.1", 0,
                                        ssl=server_ssl_context(certificates.self_signed))
    try:
        port = server.sockets[0].getsockname()[1]
        spec = HttpProbe(url=f"https://127.0.0.1:{port}/", insecure_skip_verify=True,
                         body_regex="^secret sauce$")
        result = await probe(spec)
    finally:
        server.close()
    assert (result.ok, result.message) == (True, "200 OK")
    assert result.certificate_not_after == certificates.self_signed.not_after


# ---------------------------------------------------------------- memory


@pytest.mark.parametrize("outcome", ["ok", "status", "cut-short", "timeout", "refused"])
async def test_a_finished_exchange_leaves_no_cycle_for_the_collector(
        probe: Probe, raw_servers: list[RawServer], free_port: int, outcome: str) -> None:
    """Each exchange is freed by reference counting alone: at 1,667 probes a second, cycles
    (exchange and parser, exchange and response) filled the young generations, and the
    collections that freed them held the loop for up to a second."""
    url = {
        "ok": lambda: serve(raw_servers, answering(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")),
        "status": lambda: serve(raw_servers, answering(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")),
        "cut-short": lambda: serve(raw_servers, answering(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.")),
        "timeout": lambda: serve(raw_servers, answering(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome", then="wait")),
        "refused": lambda: asyncio.sleep(0, f"http://127.0.0.1:{free_port}/"),
    }[outcome]
    target = await url()
    await probe(HttpProbe(url=target, body_regex="."), 0.3)  # the first: lazy set-up is made
    before = open_sockets()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept, for a look
    try:
        for _ in range(3):
            await probe(HttpProbe(url=target), 0.3)
        await until(lambda: open_sockets() <= before)  # every connection_lost has run
        gc.collect()
        left = sorted({type(o).__name__ for o in gc.garbage
                       if type(o).__module__.startswith(("sla_operator", "httptools"))})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
