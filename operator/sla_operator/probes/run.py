"""run_probe: one probe of any kind, every error turned into a reason and a short message."""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import time
from datetime import datetime
from typing import assert_never

import aiohttp

from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.domain.model import (
    DnsProbe,
    Endpoint,
    GrpcProbe,
    HttpProbe,
    ProbeResult,
    TcpProbe,
    TlsProbe,
)
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.certificates import handshake_message, verification_message
from sla_operator.probes.dns import probe_dns
from sla_operator.probes.grpc_health import probe_grpc
from sla_operator.probes.http import probe_http
from sla_operator.probes.outcome import ProbeFailure, ProbeOutcome
from sla_operator.probes.tcp import probe_tcp
from sla_operator.probes.tls import probe_tls

logger = logging.getLogger(__name__)

_ERRNO_MESSAGES = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connect timed out",
    errno.EADDRNOTAVAIL: "address not available",
}


async def run_probe(endpoint: Endpoint, context: ProbeContext) -> ProbeResult:
    """Probe ``endpoint`` once within its timeout; never raises (except when cancelled)."""
    started_at = context.now()
    started = time.perf_counter()
    timeout_seconds = endpoint.timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout_seconds):
            outcome = await _dispatch(endpoint, context)
    except ProbeFailure as failure:
        return _failed(started_at, started, failure.reason, failure.message,
                       failure.certificate_not_after)
    except TimeoutError:
        return _failed(started_at, started, FailureReason.TIMEOUT,
                       f"timeout after {_seconds(timeout_seconds)}")
    except Exception as error:
        return _failed(started_at, started, *describe_error(error, endpoint))
    return ProbeResult(
        time=started_at,
        ok=True,
        latency_seconds=time.perf_counter() - started,
        message=outcome.message,
        certificate_not_after=outcome.certificate_not_after,
    )


async def _dispatch(endpoint: Endpoint, context: ProbeContext) -> ProbeOutcome:
    spec = endpoint.probe
    if isinstance(spec, HttpProbe):
        return await probe_http(spec, context)
    if isinstance(spec, TcpProbe):
        return await probe_tcp(spec, context)
    if isinstance(spec, DnsProbe):
        return await probe_dns(spec, context)
    if isinstance(spec, GrpcProbe):
        return await probe_grpc(spec, context)
    if isinstance(spec, TlsProbe):
        return await probe_tls(spec, context)
    assert_never(spec)


def _failed(
    started_at: datetime, started: float, reason: FailureReason, message: str,
    not_after: datetime | None = None,
) -> ProbeResult:
    return ProbeResult(
        time=started_at,
        ok=False,
        latency_seconds=time.perf_counter() - started,
        message=message,
        certificate_not_after=not_after,
        reason=reason,
    )


def describe_error(error: BaseException, endpoint: Endpoint) -> tuple[FailureReason, str]:
    """Why a probe failed with ``error`` (a connect or TLS error raised as it is by the probe
    kinds), and a short message; messages never quote request headers."""
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        certificate_error = error.certificate_error
        if isinstance(certificate_error, ssl.SSLCertVerificationError):
            return _CERTIFICATE, verification_message(certificate_error)
        return _CERTIFICATE, "TLS: certificate verify failed"
    if isinstance(error, ssl.SSLCertVerificationError):
        return _CERTIFICATE, verification_message(error)
    if isinstance(error, aiohttp.ClientConnectorSSLError):
        if isinstance(error.os_error, ssl.SSLError):
            return FailureReason.TLS, handshake_message(error.os_error)
        return FailureReason.TLS, "TLS: handshake failed"
    if isinstance(error, ssl.SSLError):
        return FailureReason.TLS, handshake_message(error)
    if isinstance(error, aiohttp.ClientConnectorError):
        return FailureReason.CONNECT, _os_error_message(error.os_error)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return FailureReason.CONNECT, "connection closed by the server before a complete response"
    if isinstance(error, aiohttp.ClientPayloadError):
        return FailureReason.CONNECT, "connection lost while reading the response body"
    if isinstance(error, aiohttp.ClientResponseError):
        return FailureReason.PROTOCOL, "invalid HTTP response"
    if isinstance(error, OSError):
        return FailureReason.CONNECT, _os_error_message(error)
    logger.warning("unexpected error probing %s", endpoint.name, exc_info=error)
    return FailureReason.PROTOCOL, f"probe error: {type(error).__name__}"


_CERTIFICATE = FailureReason.CERTIFICATE


def _os_error_message(error: OSError) -> str:
    if error.errno in _ERRNO_MESSAGES:
        return _ERRNO_MESSAGES[error.errno]
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"connection failed: {(error.strerror or type(error).__name__).lower()}"


def _seconds(seconds: float) -> str:
    """5 -> "5s", 0.25 -> "250ms"."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
