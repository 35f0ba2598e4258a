"""Fixtures for probe tests: every target is a real server on 127.0.0.1, 127.0.0.3 or ::1."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from certificates import make_certificate
from dns_target import DnsZone
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from probe_targets import (
    CertificateSet,
    DnsServer,
    GrpcServer,
    HttpTarget,
    Probe,
    RawServer,
    read_secret,
    serve_http,
    server_ssl_context,
)

from sla_operator.domain.model import Endpoint, ProbeResult, ProbeSpec
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.policy import AddressPolicy
from sla_operator.probes.run import run_probe


@pytest.fixture
async def context() -> AsyncIterator[ProbeContext]:
    probe_context = ProbeContext(policy=AddressPolicy(), resolve_secret=read_secret)
    yield probe_context
    await probe_context.aclose()


@pytest.fixture
def probe(context: ProbeContext) -> Probe:
    """Runs one probe of ``spec`` with the test context (or another one given)."""

    async def run(
        spec: ProbeSpec, timeout: float = 5.0, probe_context: ProbeContext | None = None
    ) -> ProbeResult:
        endpoint = Endpoint(
            name="target",
            probe=spec,
            interval=datetime.timedelta(seconds=max(timeout * 2, 1)),
            timeout=datetime.timedelta(seconds=timeout),
        )
        return await run_probe(endpoint, probe_context or context)

    return run


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    directory: Path = tmp_path_factory.mktemp("certificates")
    return CertificateSet(
        self_signed=make_certificate(directory, "self-signed", datetime.timedelta(days=365)),
        expiring=make_certificate(directory, "expiring", datetime.timedelta(days=2)),
    )


@pytest.fixture
async def http_target() -> AsyncIterator[HttpTarget]:
    runner, target = await serve_http("127.0.0.1")
    yield target
    await runner.cleanup()


@pytest.fixture
async def https_target(certificates: CertificateSet) -> AsyncIterator[HttpTarget]:
    runner, target = await serve_http("127.0.0.1", server_ssl_context(certificates.self_signed))
    yield target
    await runner.cleanup()


@pytest.fixture
async def expiring_https_target(certificates: CertificateSet) -> AsyncIterator[HttpTarget]:
    runner, target = await serve_http("127.0.0.1", server_ssl_context(certificates.expiring))
    yield target
    await runner.cleanup()


@pytest.fixture
async def raw_servers() -> AsyncIterator[list[RawServer]]:
    """Servers a test starts with RawServer(...).start(behaviour) and appends to be stopped."""
    servers: list[RawServer] = []
    yield servers
    for server in servers:
        await server.stop()


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound once, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DNS_RECORDS = {
    ("svc.test.", "A"): ["127.0.0.10", "127.0.0.11"],
    ("svc.test.", "AAAA"): ["::1"],
    ("svc.test.", "TXT"): ['"v=ok"'],
    ("alias.test.", "CNAME"): ["svc.test."],
    ("mail.test.", "MX"): ["10 mx.svc.test."],
}


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsServer]:
    loop = asyncio.get_running_loop()
    zone = DnsZone(DNS_RECORDS)
    transport, _protocol = await loop.create_datagram_endpoint(lambda: zone, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    yield DnsServer(f"127.0.0.1:{port}", zone)
    transport.close()


async def _grpc_server(
    credentials: grpc.ServerCredentials | None,
) -> tuple[grpc.aio.Server, GrpcServer]:
    server = grpc.aio.server()
    health = health_async.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await health.set("payments.Api", health_pb2.HealthCheckResponse.SERVING)
    await health.set("payments.Down", health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    return server, GrpcServer(port, health)


@pytest.fixture
async def grpc_server() -> AsyncIterator[GrpcServer]:
    server, target = await _grpc_server(None)
    yield target
    await server.stop(None)


@pytest.fixture
async def grpc_tls_server(certificates: CertificateSet) -> AsyncIterator[GrpcServer]:
    credentials = grpc.ssl_server_credentials(
        [(certificates.self_signed.key_pem, certificates.self_signed.cert_pem)]
    )
    server, target = await _grpc_server(credentials)
    yield target
    await server.stop(None)
