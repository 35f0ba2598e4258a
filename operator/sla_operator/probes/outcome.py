"""What a probe ends with: a failure that fits on a status line, or an outcome.

A leaf module: every probe kind, the HTTP client and the address policy import it, and it
imports nothing of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sla_operator.domain.failure_reasons import FailureReason


class ProbeFailure(Exception):
    """A probe failed for a reason that fits on a status line ("connection refused").

    ``reason`` is the failure's class (sla_probe_failures_total), chosen where it is raised;
    ``certificate_not_after`` carries the peer certificate's expiry when the probe got that
    far (an HTTPS endpoint answering 503 still reports its certificate).
    """

    def __init__(self, reason: FailureReason, message: str,
                 certificate_not_after: datetime | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.certificate_not_after = certificate_not_after


@dataclass(frozen=True)
class ProbeOutcome:
    """What a successful probe reports besides its timing."""

    message: str
    certificate_not_after: datetime | None = None
