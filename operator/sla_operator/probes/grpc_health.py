"""The grpc probe: grpc.health.v1 Health/Check on an admitted address."""

from __future__ import annotations

import grpc  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.domain.model import GrpcProbe
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.outcome import ProbeFailure, ProbeOutcome
from sla_operator.probes.policy import literal_address, resolve_allowed
from sla_operator.probes.tls import peer_certificate

SERVING = health_pb2.HealthCheckResponse.SERVING
REFUSED = "connection refused"
# One attempt per probe: gRPC's own retries would hide a flapping server.
CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
]


def _target(address: str, port: int) -> str:
    return f"ipv6:[{address}]:{port}" if ":" in address else f"ipv4:{address}:{port}"


async def _secure_channel(spec: GrpcProbe, address: str, context: ProbeContext) -> grpc.aio.Channel:
    options = list(CHANNEL_OPTIONS)
    if spec.insecure_skip_verify:
        # gRPC cannot switch verification off; trusting exactly the certificate the server
        # presents has the same effect for a self-signed one.
        der = await peer_certificate(address, spec.port, spec.host, verify=False, context=context)
        certificate = x509.load_der_x509_certificate(der)
        credentials = grpc.ssl_channel_credentials(certificate.public_bytes(Encoding.PEM))
        options.append(("grpc.ssl_target_name_override", _certificate_name(certificate)))
    else:
        credentials = grpc.ssl_channel_credentials()
        if literal_address(spec.host) is None:
            options.append(("grpc.ssl_target_name_override", spec.host))
    return grpc.aio.secure_channel(_target(address, spec.port), credentials, options=options)


def _certificate_name(certificate: x509.Certificate) -> str:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns_names = names.value.get_values_for_type(x509.DNSName)
        if dns_names:
            return str(dns_names[0])
    except x509.ExtensionNotFound:
        pass
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not common_names:
        raise ProbeFailure(FailureReason.CERTIFICATE, "gRPC: the server certificate names no host")
    return str(common_names[0].value)


async def probe_grpc(spec: GrpcProbe, context: ProbeContext) -> ProbeOutcome:
    """Health/Check on the first admitted address that accepts a connection."""
    *others, last = await resolve_allowed(spec.host, spec.port, context.policy)
    for address in others:
        try:
            return await _check(spec, address, context)
        except ProbeFailure as failure:
            if failure.reason is not FailureReason.CONNECT or failure.message != REFUSED:
                raise
    return await _check(spec, last, context)


async def _check(spec: GrpcProbe, address: str, context: ProbeContext) -> ProbeOutcome:
    if spec.tls:
        channel = await _secure_channel(spec, address, context)
    else:
        channel = grpc.aio.insecure_channel(_target(address, spec.port), options=CHANNEL_OPTIONS)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=spec.service))
    except grpc.aio.AioRpcError as error:
        raise ProbeFailure(*_rpc_error(error, spec.service)) from None
    finally:
        await channel.close()
    status_name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status != SERVING:
        raise ProbeFailure(FailureReason.STATUS, f"gRPC: {status_name}")
    return ProbeOutcome(status_name)


def _rpc_error(error: grpc.aio.AioRpcError, service: str) -> tuple[FailureReason, str]:
    """Why the call failed, and the status line saying so."""
    code = error.code()
    details = (error.details() or "").lower()
    if code == grpc.StatusCode.NOT_FOUND:
        return FailureReason.STATUS, f"gRPC: unknown service {service!r}"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return FailureReason.PROTOCOL, "gRPC: the server does not implement grpc.health.v1"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return FailureReason.TIMEOUT, "gRPC: DEADLINE_EXCEEDED"
    if code == grpc.StatusCode.UNAVAILABLE:
        if "connection refused" in details:
            return FailureReason.CONNECT, REFUSED
        if "certificate_verify_failed" in details or "certificate verify failed" in details:
            return FailureReason.CERTIFICATE, "gRPC: TLS certificate verify failed"
        if "handshake" in details or "ssl" in details:
            return FailureReason.TLS, "gRPC: TLS handshake failed"
        return FailureReason.CONNECT, "gRPC: UNAVAILABLE"
    return FailureReason.STATUS, f"gRPC: {code.name}"
