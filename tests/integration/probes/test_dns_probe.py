"""The dns probe against a small authoritative UDP server on 127.0.0.1."""

from __future__ import annotations

import pytest
from probe_targets import DnsServer, Probe

from sla_operator.domain.model import DnsProbe
from sla_operator.probes.dns import parse_server


async def test_an_a_query_with_its_expected_answers_succeeds(probe: Probe, dns_server: DnsServer) -> None:
    spec = DnsProbe(name="svc.test", server=dns_server.address, expect=("127.0.0.11",))
    result = await probe(spec)
    assert (result.ok, result.message) == (True, "A 127.0.0.10, 127.0.0.11")


@pytest.mark.parametrize(
    ("record_type", "expected"),
    [
        ("AAAA", "0:0:0:0:0:0:0:1"),
        ("TXT", "v=ok"),
        ("CNAME", "SVC.test."),
        ("MX", "10 mx.svc.test"),
    ],
)
async def test_answers_are_compared_in_a_normal_form(
    probe: Probe, dns_server: DnsServer, record_type: str, expected: str
) -> None:
    name = {"CNAME": "alias.test", "MX": "mail.test"}.get(record_type, "svc.test")
    spec = DnsProbe(name=name, type=record_type, server=dns_server.address, expect=(expected,))
    result = await probe(spec)
    assert result.ok, result.message


async def test_a_missing_expected_answer_fails_and_shows_what_came_back(
    probe: Probe, dns_server: DnsServer
) -> None:
    spec = DnsProbe(name="svc.test", server=dns_server.address, expect=("203.0.113.7",))
    result = await probe(spec)
    assert (result.ok, result.message) == (
        False,
        "DNS: answer 127.0.0.10, 127.0.0.11 does not include 203.0.113.7",
    )


async def test_an_unknown_name_is_nxdomain(probe: Probe, dns_server: DnsServer) -> None:
    result = await probe(DnsProbe(name="nothing.test", server=dns_server.address))
    assert (result.ok, result.message) == (False, "DNS: NXDOMAIN")


async def test_a_name_without_records_of_the_type_has_no_answer(probe: Probe, dns_server: DnsServer) -> None:
    result = await probe(DnsProbe(name="alias.test", type="A", server=dns_server.address))
    assert (result.ok, result.message) == (False, "DNS: no A answer for alias.test")


async def test_a_server_that_stays_silent_times_out(probe: Probe, dns_server: DnsServer) -> None:
    result = await probe(DnsProbe(name="x.silent.test", server=dns_server.address), timeout=0.3)
    assert (result.ok, result.message) == (False, "timeout after 300ms")
    assert dns_server.zone.queries >= 1


async def test_a_servfail_is_reported(probe: Probe, dns_server: DnsServer) -> None:
    result = await probe(DnsProbe(name="x.broken.test", server=dns_server.address))
    assert (result.ok, result.message) == (False, "DNS: no server answered (SERVFAIL)")


async def test_an_unknown_record_type_is_reported(probe: Probe, dns_server: DnsServer) -> None:
    result = await probe(DnsProbe(name="svc.test", type="BOGUS", server=dns_server.address))
    assert (result.ok, result.message) == (False, "DNS: unknown record type 'BOGUS'")


@pytest.mark.parametrize(
    ("server", "parsed"),
    [
        ("10.0.0.10", ("10.0.0.10", 53)),
        ("10.0.0.10:5353", ("10.0.0.10", 5353)),
        ("[fd00::1]:5353", ("fd00::1", 5353)),
        ("fd00::1", ("fd00::1", 53)),
        ("kube-dns.kube-system.svc:53", ("kube-dns.kube-system.svc", 53)),
    ],
)
def test_server_addresses_are_parsed(server: str, parsed: tuple[str, int]) -> None:
    assert parse_server(server) == parsed
