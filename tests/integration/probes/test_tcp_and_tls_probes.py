"""The tcp and tls probes against real listeners."""

from __future__ import annotations

import gc

import pytest
from probe_targets import CertificateSet, HttpTarget, Probe, RawServer, never_answer

from sla_operator.domain.model import TcpProbe, TlsProbe


async def test_a_listening_port_is_a_tcp_success(probe: Probe, raw_servers: list[RawServer]) -> None:
    server = await RawServer("127.0.0.1").start(never_answer)
    raw_servers.append(server)
    result = await probe(TcpProbe(host="127.0.0.1", port=server.port))
    assert (result.ok, result.message) == (True, f"connected to 127.0.0.1:{server.port}")
    assert server.accepted == 1


async def test_a_closed_port_is_a_tcp_failure(probe: Probe, free_port: int) -> None:
    result = await probe(TcpProbe(host="127.0.0.1", port=free_port))
    assert (result.ok, result.message) == (False, "connection refused")


async def test_tcp_on_ipv6_loopback_is_probed(probe: Probe, raw_servers: list[RawServer]) -> None:
    server = await RawServer("::1").start(never_answer)
    raw_servers.append(server)
    result = await probe(TcpProbe(host="::1", port=server.port))
    assert (result.ok, result.message) == (True, f"connected to [::1]:{server.port}")


async def test_an_unresolvable_host_is_a_dns_failure(probe: Probe) -> None:
    result = await probe(TcpProbe(host="no-such-host.invalid", port=80))
    assert not result.ok
    assert result.message.startswith("DNS: cannot resolve no-such-host.invalid")


async def test_a_tls_handshake_reports_the_certificate_expiry(
    probe: Probe, expiring_https_target: HttpTarget, certificates: CertificateSet
) -> None:
    spec = TlsProbe(
        host="127.0.0.1",
        port=expiring_https_target.port,
        server_name="localhost",
        insecure_skip_verify=True,
    )
    result = await probe(spec)
    assert result.ok, result.message
    assert result.certificate_not_after == certificates.expiring.not_after
    expected_day = certificates.expiring.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result.message == f"TLS handshake ok, certificate valid until {expected_day}"


async def test_a_tls_probe_verifies_by_default(probe: Probe, https_target: HttpTarget) -> None:
    result = await probe(TlsProbe(host="localhost", port=https_target.port))
    assert not result.ok
    assert result.message == "TLS: certificate verify failed: self-signed certificate"


async def test_a_tls_probe_to_a_plain_tcp_server_fails(probe: Probe, raw_servers: list[RawServer]) -> None:
    server = await RawServer("127.0.0.1").start(never_answer)
    raw_servers.append(server)
    result = await probe(TlsProbe(host="127.0.0.1", port=server.port), timeout=0.3)
    assert (result.ok, result.message) == (False, "timeout after 300ms")


async def test_a_tls_probe_to_an_http_server_fails_the_handshake(
    probe: Probe, http_target: HttpTarget
) -> None:
    result = await probe(TlsProbe(host="127.0.0.1", port=http_target.port))
    assert not result.ok
    assert result.message.startswith("TLS: handshake failed")


@pytest.mark.parametrize("kind", [TcpProbe, TlsProbe])
async def test_a_refused_connection_leaves_no_cycle_for_the_collector(
        probe: Probe, free_port: int, kind: type[TcpProbe] | type[TlsProbe]) -> None:
    """The error goes out through the frame that tried each address: held there as well, it
    made a cycle of some 25 objects per failed probe (its traceback, the frames, the
    stream's reader and protocol) that only the collector frees."""
    spec = kind(host="127.0.0.1", port=free_port)
    await probe(spec)  # lazy set-up is made
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept, for a look
    try:
        results = [await probe(spec) for _ in range(3)]
        gc.collect()
        left = sorted({type(o).__name__ for o in gc.garbage
                       if isinstance(o, OSError) or type(o).__name__ == "StreamReaderProtocol"})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert [r.message for r in results] == ["connection refused"] * 3
    assert left == []
