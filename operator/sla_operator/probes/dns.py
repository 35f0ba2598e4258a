"""The dns probe: a query whose answers must include every expected value."""

from __future__ import annotations

import ipaddress
import re

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.resolver

from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.domain.model import DnsProbe
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.outcome import ProbeFailure, ProbeOutcome
from sla_operator.probes.policy import resolve_allowed

DEFAULT_PORT = 53
SHOWN_ANSWERS = 3
# The endpoint's timeout bounds the whole probe; dnspython's own lifetime only has to be longer.
RESOLVER_LIFETIME_SECONDS = 3600.0
_SERVER = re.compile(r"^\[(?P<v6>[^\]]+)\](?::(?P<v6port>\d+))?$|^(?P<host>[^:]+)(?::(?P<port>\d+))?$")


def parse_server(server: str) -> tuple[str, int]:
    """ "10.0.0.10", "10.0.0.10:5353", "[fd00::1]:53", "fd00::1" or "dns.example:53"."""
    text = server.strip()
    try:
        return str(ipaddress.IPv6Address(text)), DEFAULT_PORT
    except ValueError:
        match = _SERVER.match(text)
    if match is None:
        raise ProbeFailure(FailureReason.DNS,
                           f"DNS: server {server!r} is not host, host:port or [ipv6]:port")
    host = match.group("v6") or match.group("host")
    port_text = match.group("v6port") or match.group("port")
    port = int(port_text) if port_text else DEFAULT_PORT
    if not 0 < port < 65536:
        raise ProbeFailure(FailureReason.DNS, f"DNS: server port {port} is out of range")
    return host, port


async def _resolver(spec: DnsProbe, context: ProbeContext) -> dns.asyncresolver.Resolver:
    if spec.server is None:
        resolver = dns.asyncresolver.Resolver(configure=True)
    else:
        host, port = parse_server(spec.server)
        addresses = await resolve_allowed(host, port, context.policy)
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = addresses
        resolver.port = port
    resolver.lifetime = RESOLVER_LIFETIME_SECONDS
    resolver.cache = None
    return resolver


def answer_text(rdata: dns.rdata.Rdata) -> str:
    """An answer as it is written in an expectation: TXT without quotes, names without the dot."""
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return "".join(part.decode(errors="replace") for part in strings)
    return str(rdata.to_text()).rstrip(".")


def normalized(value: str) -> str:
    """Compared form: case and trailing dots ignored, IPv6 in one spelling."""
    text = value.strip().rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return " ".join(part.rstrip(".") for part in text.split())


async def probe_dns(spec: DnsProbe, context: ProbeContext) -> ProbeOutcome:
    record_type = spec.type.upper()
    try:
        rdtype = dns.rdatatype.from_text(record_type)
    except dns.rdatatype.UnknownRdatatype:
        raise ProbeFailure(FailureReason.DNS, f"DNS: unknown record type {spec.type!r}") from None
    resolver = await _resolver(spec, context)
    try:
        answer = await resolver.resolve(spec.name, rdtype, search=False)
    except dns.resolver.NXDOMAIN:
        raise ProbeFailure(FailureReason.DNS, "DNS: NXDOMAIN") from None
    except dns.resolver.NoAnswer:
        raise ProbeFailure(FailureReason.DNS, f"DNS: no {record_type} answer for {spec.name}") from None
    except dns.resolver.NoNameservers as error:
        raise ProbeFailure(FailureReason.DNS,
                           f"DNS: no server answered ({_server_errors(error)})") from None
    except dns.exception.Timeout:
        raise ProbeFailure(FailureReason.DNS, "DNS: timeout") from None
    except dns.name.NameTooLong:
        raise ProbeFailure(FailureReason.DNS, f"DNS: name {spec.name!r} is too long") from None
    except dns.exception.SyntaxError:
        raise ProbeFailure(FailureReason.DNS, f"DNS: {spec.name!r} is not a valid name") from None
    # Sorted: an RRset has no order, and a stable message does not churn the status.
    answers = sorted(answer_text(rdata) for rdata in answer)
    _check_expected(spec.expect, answers)
    shown = ", ".join(answers[:SHOWN_ANSWERS]) + (" …" if len(answers) > SHOWN_ANSWERS else "")
    return ProbeOutcome(f"{record_type} {shown}")


def _check_expected(expect: tuple[str, ...], answers: list[str]) -> None:
    present = {normalized(text) for text in answers}
    missing = [value for value in expect if normalized(value) not in present]
    if missing:
        got = ", ".join(answers[:SHOWN_ANSWERS]) or "nothing"
        raise ProbeFailure(FailureReason.BODY,
                           f"DNS: answer {got} does not include {', '.join(missing)}")


def _server_errors(error: dns.resolver.NoNameservers) -> str:
    """The rcode the servers gave (SERVFAIL, REFUSED), or what went wrong talking to them."""
    reasons: list[str] = []
    for entry in error.kwargs.get("errors", []):
        detail = entry[3] if len(entry) > 3 else entry[-1]
        text = str(detail).split(" answered ")[-1] if detail else "error"
        if text not in reasons:
            reasons.append(text)
    return "; ".join(reasons) or "no server"
