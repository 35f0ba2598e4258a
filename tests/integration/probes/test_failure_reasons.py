"""Each failure reason, produced by a real failing target on loopback, with its detail kept in
the message (docs/API.md, "Why a probe failed")."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from probe_targets import (
    DnsServer,
    GrpcServer,
    HttpTarget,
    Probe,
    RawServer,
    answer_garbage,
    never_answer,
    read_secret,
    reset_mid_response,
)

from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.domain.model import (
    DnsProbe,
    GrpcProbe,
    Header,
    HttpProbe,
    ProbeResult,
    SecretRef,
    TcpProbe,
    TlsProbe,
)
from sla_operator.probes import names
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.names import NameResolver
from sla_operator.probes.policy import AddressPolicy


def failed(result: ProbeResult, reason: FailureReason, message: str) -> None:
    """The probe failed for ``reason``, and its message still says exactly why."""
    assert not result.ok, result.message
    assert (result.reason, result.message) == (reason, message)


@pytest.fixture
def local_names(dns_server: DnsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Host names are resolved by the test's own name server (which knows svc.test only)."""
    host, port = dns_server.address.rsplit(":", 1)
    (tmp_path / "hosts").write_text("")
    monkeypatch.setattr(names, "RESOLVER", NameResolver(
        hosts_file=tmp_path / "hosts", nameservers=[host], port=int(port)))


async def test_a_name_that_does_not_resolve_is_dns(probe: Probe, local_names: None) -> None:
    result = await probe(HttpProbe(url="http://nowhere.test/ok"))
    failed(result, FailureReason.DNS, "DNS: cannot resolve nowhere.test (no such name)")
    result = await probe(TcpProbe(host="nowhere.test", port=5432))
    failed(result, FailureReason.DNS, "DNS: cannot resolve nowhere.test (no such name)")


async def test_a_dns_probe_of_a_missing_name_is_dns(probe: Probe, dns_server: DnsServer) -> None:
    result = await probe(DnsProbe(name="nowhere.test", server=dns_server.address))
    failed(result, FailureReason.DNS, "DNS: NXDOMAIN")
    result = await probe(DnsProbe(name="svc.test", type="MX", server=dns_server.address))
    failed(result, FailureReason.DNS, "DNS: no MX answer for svc.test")


async def test_a_dns_answer_without_the_expected_value_is_body(
        probe: Probe, dns_server: DnsServer) -> None:
    result = await probe(DnsProbe(name="svc.test", server=dns_server.address,
                                  expect=("127.0.0.99",)))
    failed(result, FailureReason.BODY,
           "DNS: answer 127.0.0.10, 127.0.0.11 does not include 127.0.0.99")


async def test_a_refused_port_is_connect(probe: Probe, free_port: int) -> None:
    failed(await probe(HttpProbe(url=f"http://127.0.0.1:{free_port}/")),
           FailureReason.CONNECT, "connection refused")
    failed(await probe(TcpProbe(host="127.0.0.1", port=free_port)),
           FailureReason.CONNECT, "connection refused")
    failed(await probe(TlsProbe(host="127.0.0.1", port=free_port)),
           FailureReason.CONNECT, "connection refused")
    failed(await probe(GrpcProbe(host="127.0.0.1", port=free_port)),
           FailureReason.CONNECT, "connection refused")


async def test_a_connection_lost_in_the_body_is_connect(
        probe: Probe, raw_servers: list[RawServer]) -> None:
    server = await RawServer("127.0.0.1").start(reset_mid_response)
    raw_servers.append(server)
    result = await probe(HttpProbe(url=f"http://127.0.0.1:{server.port}/"))
    failed(result, FailureReason.CONNECT, "connection lost while reading the response body")


async def test_a_server_that_never_answers_is_timeout(
        probe: Probe, http_target: HttpTarget, raw_servers: list[RawServer]) -> None:
    failed(await probe(HttpProbe(url=http_target.url("/hang")), timeout=0.3),
           FailureReason.TIMEOUT, "timeout after 300ms")
    server = await RawServer("127.0.0.1").start(never_answer)
    raw_servers.append(server)
    failed(await probe(TlsProbe(host="127.0.0.1", port=server.port), timeout=0.3),
           FailureReason.TIMEOUT, "timeout after 300ms")


async def test_tls_spoken_to_a_plain_http_server_is_tls(
        probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=f"https://127.0.0.1:{http_target.port}/ok"))
    failed(result, FailureReason.TLS, "TLS: handshake failed: wrong version number")
    result = await probe(TlsProbe(host="127.0.0.1", port=http_target.port))
    failed(result, FailureReason.TLS, "TLS: handshake failed: wrong version number")


async def test_an_untrusted_certificate_is_certificate(
        probe: Probe, https_target: HttpTarget) -> None:
    message = "TLS: certificate verify failed: self-signed certificate"
    failed(await probe(HttpProbe(url=https_target.url("/ok"))),
           FailureReason.CERTIFICATE, message)
    failed(await probe(TlsProbe(host="127.0.0.1", port=https_target.port,
                                server_name="localhost")),
           FailureReason.CERTIFICATE, message)


async def test_a_certificate_for_another_name_is_certificate(
        probe: Probe, https_target: HttpTarget) -> None:
    result = await probe(TlsProbe(host="127.0.0.1", port=https_target.port,
                                  server_name="payments.example.com"))
    assert (result.ok, result.reason) == (False, FailureReason.CERTIFICATE)
    assert result.message.startswith("TLS: certificate verify failed")


async def test_an_unexpected_status_is_status(
        probe: Probe, http_target: HttpTarget, grpc_server: GrpcServer) -> None:
    failed(await probe(HttpProbe(url=http_target.url("/status/503"))),
           FailureReason.STATUS, "status 503, expected 2xx")
    failed(await probe(GrpcProbe(host="127.0.0.1", port=grpc_server.port,
                                 service="payments.Down")),
           FailureReason.STATUS, "gRPC: NOT_SERVING")
    failed(await probe(GrpcProbe(host="127.0.0.1", port=grpc_server.port,
                                 service="payments.Unknown")),
           FailureReason.STATUS, "gRPC: unknown service 'payments.Unknown'")


async def test_a_body_that_does_not_match_is_body(probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=http_target.url("/ok"), body_regex='"status":"down"'))
    failed(result, FailureReason.BODY, 'body does not match /"status":"down"/')


async def test_a_denied_address_is_policy(probe: Probe, http_target: HttpTarget) -> None:
    denying = ProbeContext(policy=AddressPolicy(deny=(ipaddress.ip_network("127.0.0.0/8"),)),
                           resolve_secret=read_secret)
    try:
        for spec in (HttpProbe(url=http_target.url("/ok")),
                     TcpProbe(host="127.0.0.1", port=http_target.port),
                     TlsProbe(host="127.0.0.1", port=http_target.port)):
            failed(await probe(spec, probe_context=denying),
                   FailureReason.POLICY, "address 127.0.0.1 denied by policy")
    finally:
        await denying.aclose()


async def test_a_redirect_to_a_denied_address_is_policy(
        probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=http_target.url("/redirect?to=http://169.254.169.254/")))
    failed(result, FailureReason.POLICY, "address 169.254.169.254 denied by policy")


async def test_a_refused_secret_is_policy(probe: Probe, http_target: HttpTarget) -> None:
    from sla_operator.domain.errors import SecretRefused

    async def refuse(name: str, key: str) -> str:
        raise SecretRefused(f"secret {name!r} is not labelled for probes")

    refusing = ProbeContext(policy=AddressPolicy(), resolve_secret=refuse)
    try:
        spec = HttpProbe(url=http_target.url("/ok"),
                         headers=(Header("Authorization", secret=SecretRef("db", "password")),))
        result = await probe(spec, probe_context=refusing)
        failed(result, FailureReason.POLICY,
               "header Authorization: secret 'db' is not labelled for probes")
    finally:
        await refusing.aclose()


async def test_an_answer_that_is_not_http_is_protocol(
        probe: Probe, raw_servers: list[RawServer], http_target: HttpTarget) -> None:
    server = await RawServer("127.0.0.1").start(answer_garbage)
    raw_servers.append(server)
    failed(await probe(HttpProbe(url=f"http://127.0.0.1:{server.port}/")),
           FailureReason.PROTOCOL, "invalid HTTP response")
    failed(await probe(HttpProbe(url=http_target.url("/loop"))),
           FailureReason.PROTOCOL, "more than 10 redirects")


async def test_a_successful_probe_has_no_reason(probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=http_target.url("/ok")))
    assert (result.ok, result.reason) == (True, None)
