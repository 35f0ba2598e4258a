"""Names are resolved on the event loop: a dead name server delays no other probe."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from probe_targets import DnsServer, HttpTarget

from sla_operator.domain.model import Endpoint, HttpProbe
from sla_operator.probes import names
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.names import NameResolver, parse_hosts
from sla_operator.probes.outcome import ProbeFailure
from sla_operator.probes.policy import AddressPolicy, resolve_allowed
from sla_operator.probes.run import run_probe


def resolver_for(dns_server: DnsServer, tmp_path: Path, hosts: str = "") -> NameResolver:
    host, port = dns_server.address.rsplit(":", 1)
    (tmp_path / "hosts").write_text(hosts)
    return NameResolver(hosts_file=tmp_path / "hosts", nameservers=[host], port=int(port))


async def test_names_come_from_the_hosts_file_then_from_dns(
        dns_server: DnsServer, tmp_path: Path) -> None:
    resolver = resolver_for(dns_server, tmp_path, "127.0.0.9 svc.test  # an override\n")
    assert await resolver.addresses("svc.test") == ["127.0.0.9"]  # the hosts file wins
    assert await resolver.addresses("LOCALHOST.") == ["127.0.0.1", "::1"]
    other = resolver_for(dns_server, tmp_path / "..", "")
    answered = await other.addresses("svc.test")
    assert answered and all(":" not in a for a in answered[:1])  # IPv4 first
    with pytest.raises(ProbeFailure, match=r"^DNS: cannot resolve nowhere\.test \(no such name\)$"):
        await other.addresses("nowhere.test")


async def test_a_changed_hosts_file_is_read_again(dns_server: DnsServer, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = resolver_for(dns_server, tmp_path, "127.0.0.9 moved.test\n")
    assert await resolver.addresses("moved.test") == ["127.0.0.9"]
    (tmp_path / "hosts").write_text("127.0.0.10 moved.test\n# longer than before\n")
    monkeypatch.setattr(names, "HOSTS_RECHECK_SECONDS", 0.0)
    assert await resolver.addresses("moved.test") == ["127.0.0.10"]


def test_the_hosts_file_parser_skips_comments_and_garbage() -> None:
    assert parse_hosts("# c\n::1 both\n127.0.0.1 both Both\nnot-an-ip x\n\n10.0.0.1\n") == {
        "both": ["127.0.0.1", "::1"]}


async def test_64_lookups_hanging_on_a_dead_name_server_do_not_delay_a_healthy_probe(
        dns_server: DnsServer, http_target: HttpTarget, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = resolver_for(dns_server, tmp_path, "127.0.0.1 healthy.test\n")
    monkeypatch.setattr(names, "RESOLVER", resolver)
    hanging = [asyncio.create_task(resolve_allowed(f"n{i}.silent.test", 80, AddressPolicy()))
               for i in range(64)]
    try:
        await asyncio.sleep(0.1)  # every lookup is waiting for its answer now
        url = http_target.url("/ok").replace("127.0.0.1", "healthy.test")
        endpoint = Endpoint("api", HttpProbe(url), interval=timedelta(seconds=5),
                            timeout=timedelta(seconds=1))
        context = ProbeContext(policy=AddressPolicy(), resolve_secret=_no_secrets)
        try:
            result = await run_probe(endpoint, context)
        finally:
            await context.aclose()
        assert result.ok, result.message
        assert not any(task.done() for task in hanging)
    finally:
        for task in hanging:
            task.cancel()
        await asyncio.gather(*hanging, return_exceptions=True)


async def test_the_probe_deadline_cancels_a_hanging_lookup(
        dns_server: DnsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names, "RESOLVER", resolver_for(dns_server, tmp_path))
    endpoint = Endpoint("api", HttpProbe("http://dead.silent.test/healthz"),
                        interval=timedelta(seconds=5), timeout=timedelta(milliseconds=300))
    context = ProbeContext(policy=AddressPolicy(), resolve_secret=_no_secrets)
    try:
        result = await run_probe(endpoint, context)
    finally:
        await context.aclose()
    assert not result.ok and result.message == "timeout after 300ms"


async def _no_secrets(name: str, key: str) -> str:
    raise AssertionError("no secrets here")
