"""Why a probe failed, as one of a small fixed set (docs/API.md, "Why a probe failed").

The reason is chosen where the failure happens (each probe kind raises ProbeFailure with its
reason); the status ``message`` keeps the detail. The set is fixed so that
``sla_probe_failures_total{reason}`` stays a handful of series that dashboards and alerts can
name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class FailureReason(StrEnum):
    DNS = "dns"
    """The name did not resolve, or a dns probe's query failed (NXDOMAIN, SERVFAIL, no answer)."""
    CONNECT = "connect"
    """No connection (refused, reset, unreachable), or it was lost before the answer ended."""
    TIMEOUT = "timeout"
    """The probe did not finish within the endpoint's timeout."""
    TLS = "tls"
    """The TLS handshake failed for another reason than the certificate (protocol, alert)."""
    CERTIFICATE = "certificate"
    """The peer's certificate was refused: untrusted, expired, or for another name."""
    STATUS = "status"
    """The server answered with a status that is not expected (HTTP status, gRPC health)."""
    BODY = "body"
    """The answer's content is not what was expected (bodyRegex, a dns probe's ``expect``)."""
    POLICY = "policy"
    """The operator refused the probe: an address the policy denies, a Secret not allowed."""
    PROTOCOL = "protocol"
    """The request could not be made as specified, or the answer broke its protocol."""


FAILURE_REASONS: Final = tuple(FailureReason)
"""Every reason, in the order of the enum (and of the counters kept per endpoint)."""

REASON_INDEX: Final = {reason: index for index, reason in enumerate(FAILURE_REASONS)}
"""A reason's position in FAILURE_REASONS."""
