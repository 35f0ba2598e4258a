"""The http probe over TLS: verification, insecureSkipVerify and the certificate's notAfter."""

from __future__ import annotations

from probe_targets import CertificateSet, HttpTarget, Probe

from sla_operator.domain.model import HttpProbe


async def test_a_self_signed_certificate_fails_verification(probe: Probe, https_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=https_target.url("/ok")))
    assert not result.ok
    assert result.message == "TLS: certificate verify failed: self-signed certificate"
    assert https_target.seen == []


async def test_insecure_skip_verify_accepts_a_self_signed_certificate(
    probe: Probe, https_target: HttpTarget, certificates: CertificateSet
) -> None:
    result = await probe(HttpProbe(url=https_target.url("/ok"), insecure_skip_verify=True))
    assert result.ok, result.message
    assert result.certificate_not_after == certificates.self_signed.not_after


async def test_the_certificate_expiry_is_reported_by_hostname_too(
    probe: Probe, expiring_https_target: HttpTarget, certificates: CertificateSet
) -> None:
    url = f"https://localhost:{expiring_https_target.port}/ok"
    result = await probe(HttpProbe(url=url, insecure_skip_verify=True))
    assert result.ok, result.message
    assert result.certificate_not_after == certificates.expiring.not_after


async def test_the_certificate_is_reported_for_an_empty_body(
    probe: Probe, expiring_https_target: HttpTarget, certificates: CertificateSet
) -> None:
    url = expiring_https_target.url("/empty")
    result = await probe(HttpProbe(url=url, insecure_skip_verify=True))
    assert (result.ok, result.message) == (True, "204 No Content")
    assert result.certificate_not_after == certificates.expiring.not_after


async def test_the_certificate_is_reported_when_the_status_is_wrong(
    probe: Probe, expiring_https_target: HttpTarget, certificates: CertificateSet
) -> None:
    url = expiring_https_target.url("/status/503")
    result = await probe(HttpProbe(url=url, insecure_skip_verify=True))
    assert not result.ok
    assert result.certificate_not_after == certificates.expiring.not_after


async def test_plain_http_to_a_tls_port_fails(probe: Probe, https_target: HttpTarget) -> None:
    url = https_target.url("/ok").replace("https://", "http://")
    result = await probe(HttpProbe(url=url))
    assert not result.ok
    assert result.message in (
        "invalid HTTP response",
        "connection closed by the server before a complete response",
    )
