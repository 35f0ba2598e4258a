"""Reading a peer certificate's expiry, and describing TLS verification failures."""

from __future__ import annotations

import ssl
from datetime import datetime

from cryptography import x509


def certificate_not_after(der: bytes | None) -> datetime | None:
    """notAfter (UTC) of a DER certificate; None when there is none or it cannot be parsed."""
    if not der:
        return None
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError:
        return None


def verification_message(error: ssl.SSLCertVerificationError) -> str:
    """ "TLS: certificate verify failed: self-signed certificate" and the like."""
    reason = error.verify_message or error.reason or "unknown reason"
    return f"TLS: certificate verify failed: {reason}"


def handshake_message(error: ssl.SSLError) -> str:
    reason = error.reason or error.__class__.__name__
    return f"TLS: handshake failed: {reason.lower().replace('_', ' ')}"
