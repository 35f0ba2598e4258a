"""The grpc probe against a real grpc.aio server with the standard health servicer."""

from __future__ import annotations

from probe_targets import GrpcServer, Probe

from sla_operator.domain.model import GrpcProbe


async def test_a_serving_server_is_a_success(probe: Probe, grpc_server: GrpcServer) -> None:
    result = await probe(GrpcProbe(host="127.0.0.1", port=grpc_server.port))
    assert (result.ok, result.message) == (True, "SERVING")


async def test_a_serving_service_is_a_success(probe: Probe, grpc_server: GrpcServer) -> None:
    spec = GrpcProbe(host="127.0.0.1", port=grpc_server.port, service="payments.Api")
    result = await probe(spec)
    assert (result.ok, result.message) == (True, "SERVING")


async def test_a_not_serving_service_fails(probe: Probe, grpc_server: GrpcServer) -> None:
    spec = GrpcProbe(host="127.0.0.1", port=grpc_server.port, service="payments.Down")
    result = await probe(spec)
    assert (result.ok, result.message) == (False, "gRPC: NOT_SERVING")


async def test_an_unknown_service_fails(probe: Probe, grpc_server: GrpcServer) -> None:
    spec = GrpcProbe(host="127.0.0.1", port=grpc_server.port, service="payments.Nope")
    result = await probe(spec)
    assert (result.ok, result.message) == (False, "gRPC: unknown service 'payments.Nope'")


async def test_a_closed_port_is_connection_refused(probe: Probe, free_port: int) -> None:
    result = await probe(GrpcProbe(host="127.0.0.1", port=free_port))
    assert (result.ok, result.message) == (False, "connection refused")


async def test_tls_with_a_self_signed_certificate_fails_verification(
    probe: Probe, grpc_tls_server: GrpcServer
) -> None:
    result = await probe(GrpcProbe(host="localhost", port=grpc_tls_server.port, tls=True))
    assert not result.ok
    assert result.message.startswith("gRPC: TLS")


async def test_tls_with_insecure_skip_verify_accepts_a_self_signed_certificate(
    probe: Probe, grpc_tls_server: GrpcServer
) -> None:
    spec = GrpcProbe(host="127.0.0.1", port=grpc_tls_server.port, tls=True, insecure_skip_verify=True)
    result = await probe(spec)
    assert (result.ok, result.message) == (True, "SERVING")


async def test_plaintext_to_a_tls_server_fails(probe: Probe, grpc_tls_server: GrpcServer) -> None:
    result = await probe(GrpcProbe(host="127.0.0.1", port=grpc_tls_server.port), timeout=1)
    assert not result.ok
