"""The tls probe: a TLS handshake whose certificate is verified and whose expiry is reported."""

from __future__ import annotations

import asyncio
import ssl
from functools import cache

from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.domain.model import TlsProbe
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.certificates import certificate_not_after
from sla_operator.probes.outcome import ProbeFailure, ProbeOutcome
from sla_operator.probes.policy import resolve_allowed
from sla_operator.probes.tcp import close_quietly


@cache
def client_context(verify: bool) -> ssl.SSLContext:
    """One client context per verification mode: building one loads the CA store."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def peer_certificate(
    host: str, port: int, server_name: str, *, verify: bool, context: ProbeContext
) -> bytes:
    """The DER certificate a TLS server presents, after a handshake checked as asked."""
    last_error: OSError | None = None
    for address in await resolve_allowed(host, port, context.policy):
        try:
            _reader, writer = await asyncio.open_connection(
                address, port, ssl=client_context(verify), server_hostname=server_name
            )
        except ssl.SSLError:
            raise
        except OSError as error:
            last_error = error
            continue
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        await close_quietly(writer)
        if not der:
            raise ProbeFailure(FailureReason.TLS, "TLS: the server presented no certificate")
        return bytes(der)
    assert last_error is not None
    try:
        raise last_error
    finally:
        last_error = None  # this frame, in the error's traceback, must not hold it: a cycle


async def probe_tls(spec: TlsProbe, context: ProbeContext) -> ProbeOutcome:
    server_name = spec.server_name or spec.host
    der = await peer_certificate(
        spec.host, spec.port, server_name, verify=not spec.insecure_skip_verify, context=context
    )
    not_after = certificate_not_after(der)
    shown = not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if not_after else "unknown"
    return ProbeOutcome(f"TLS handshake ok, certificate valid until {shown}", not_after)
