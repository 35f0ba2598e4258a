"""Host names to addresses on the event loop, with no thread pool.

``loop.getaddrinfo`` runs in the loop's small default thread pool, shared by every probe of
every agreement: names that take seconds to resolve (a dead name server of one tenant) hold
its threads, and a healthy probe of another agreement waits behind them until it times
out. Here a name is looked up in the hosts file, then with dnspython's asyncio resolver (the
name servers, search list and ndots of resolv.conf), A and AAAA at once; the lookup is a
coroutine, so the probe's own deadline cancels it and nothing else waits for it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.resolver

from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.probes.outcome import ProbeFailure

HOSTS_RECHECK_SECONDS = 5.0
# An upper bound for one lookup; the probe's own timeout is usually shorter and cancels it.
LOOKUP_LIFETIME_SECONDS = 30.0
LOCALHOST = ("127.0.0.1", "::1")  # RFC 6761: localhost names never go to a name server


class NameResolver:
    """Addresses of a host name: the hosts file first, then DNS; IPv4 before IPv6."""

    def __init__(self, hosts_file: Path = Path("/etc/hosts"),
                 nameservers: list[str] | None = None, port: int = 53) -> None:
        self.hosts_file = hosts_file
        self._nameservers, self._port = nameservers, port
        self._hosts: dict[str, list[str]] = {}
        self._hosts_stamp: tuple[float, int] | None = None
        self._hosts_checked = float("-inf")
        self._resolver: dns.asyncresolver.Resolver | None = None

    async def addresses(self, host: str) -> list[str]:
        name = host.rstrip(".").lower()
        known = self._from_hosts(name)
        if known:
            return known
        if name == "localhost" or name.endswith(".localhost"):
            return list(LOCALHOST)
        answers = await asyncio.gather(self._query(name, "A"), self._query(name, "AAAA"),
                                       return_exceptions=True)
        found = [a for answer in answers if isinstance(answer, list) for a in answer]
        if found:
            return list(dict.fromkeys(found))
        failure = next((a for a in answers if isinstance(a, BaseException)), None)
        if isinstance(failure, asyncio.CancelledError):
            raise failure
        raise ProbeFailure(FailureReason.DNS, f"DNS: cannot resolve {host} ({_reason(failure)})")

    async def _query(self, name: str, rdtype: str) -> list[str]:
        try:
            answer = await self._dns().resolve(name, rdtype, search=True)
        except dns.resolver.NoAnswer:
            return []
        return [record.to_text() for record in answer]

    def _dns(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            if self._nameservers is None:
                try:
                    resolver = dns.asyncresolver.Resolver(configure=True)
                except dns.resolver.NoResolverConfiguration:
                    resolver = dns.asyncresolver.Resolver(configure=False)
                    resolver.nameservers = ["127.0.0.1"]
            else:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = list(self._nameservers)
                resolver.port = self._port
            resolver.lifetime = LOOKUP_LIFETIME_SECONDS
            resolver.cache = None  # every probe asks afresh: a changed record is news
            self._resolver = resolver
        return self._resolver

    def _from_hosts(self, name: str) -> list[str]:
        now = time.monotonic()
        if now - self._hosts_checked >= HOSTS_RECHECK_SECONDS:
            self._hosts_checked = now
            self._reload_hosts()
        return self._hosts.get(name, [])

    def _reload_hosts(self) -> None:
        try:
            info = os.stat(self.hosts_file)
            if (info.st_mtime, info.st_size) == self._hosts_stamp:
                return
            text = self.hosts_file.read_text(errors="replace")
        except OSError:
            self._hosts, self._hosts_stamp = {}, None
            return
        self._hosts, self._hosts_stamp = parse_hosts(text), (info.st_mtime, info.st_size)


def parse_hosts(text: str) -> dict[str, list[str]]:
    """name -> addresses from a hosts file, IPv4 first, in file order otherwise."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            address = ipaddress.ip_address(fields[0].split("%", 1)[0])
        except ValueError:
            continue
        for name in fields[1:]:
            entries = table.setdefault(name.lower(), [])
            if str(address) not in entries:
                entries.append(str(address))
    for name, entries in table.items():
        table[name] = sorted(entries, key=lambda a: ":" in a)
    return table


def _reason(failure: BaseException | None) -> str:
    if isinstance(failure, dns.resolver.NXDOMAIN):
        return "no such name"
    if isinstance(failure, dns.exception.Timeout | dns.resolver.LifetimeTimeout):
        return "timed out"
    if isinstance(failure, dns.resolver.NoNameservers):
        return "no name server answered"
    if failure is None:
        return "no address"
    return type(failure).__name__


RESOLVER = NameResolver()
"""The process's resolver; the hosts file and resolv.conf are read on first use."""
