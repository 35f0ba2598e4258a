"""Which addresses probes may connect to, checked after DNS resolution.

A probe target is user input: without a policy, an SLA could make the operator fetch the
cloud metadata service (169.254.169.254) with the operator's own network identity. The
policy is applied to the resolved address of every connection, including redirect targets
and DNS servers, so a hostname that resolves to a denied address is refused too.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.probes import names
from sla_operator.probes.names import NameResolver
from sla_operator.probes.outcome import ProbeFailure

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_DENY: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


def parse_cidr(text: str) -> Network:
    """A network from "10.0.0.0/8" or a bare address; ValueError says what was wrong."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as error:
        raise ValueError(
            f"invalid CIDR {text!r}: expected an IPv4 or IPv6 network such as 10.0.0.0/8 "
            f"or fd00::/8 ({error})"
        ) from None


def _plain_address(address: Address) -> Address:
    """IPv4-mapped IPv6 (::ffff:169.254.169.254) is checked as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class AddressPolicy:
    """Deny ranges always win; a non-empty allow list admits only its ranges; a namespace's
    own allow list (from the administrators' probe policy) must admit the address too."""

    deny: tuple[Network, ...] = DEFAULT_DENY
    allow: tuple[Network, ...] = ()
    namespace_allow: tuple[Network, ...] = ()
    scope: str = ""  # whose ranges namespace_allow are, for the refusal message

    @classmethod
    def from_cidrs(cls, deny: Sequence[str], allow: Sequence[str]) -> AddressPolicy:
        """The policy from --deny-cidr / --allow-cidr values; given deny ranges add to the defaults."""
        extra_deny = tuple(parse_cidr(text) for text in deny)
        return cls(
            deny=DEFAULT_DENY + extra_deny,
            allow=tuple(parse_cidr(text) for text in allow),
        )

    def check(self, address: str) -> str | None:
        """None when probes may connect to ``address``, else a short reason."""
        try:
            parsed = _plain_address(ipaddress.ip_address(address.split("%", 1)[0]))
        except ValueError:
            return f"address {address} is not an IP address"
        for network in self.deny:
            if parsed.version == network.version and parsed in network:
                return f"address {address} denied by policy"
        if self.allow and not _within(parsed, self.allow):
            return f"address {address} not in the allowed ranges"
        if self.namespace_allow and not _within(parsed, self.namespace_allow):
            return f"address {address} not in the ranges {self.scope} may probe"
        return None

    def narrowed(self, rule: NamespaceRule, namespace: str) -> AddressPolicy:
        """This policy with a namespace rule's ranges added: more denied, never more allowed."""
        return AddressPolicy(deny=self.deny + rule.deny, allow=self.allow,
                             namespace_allow=rule.allow, scope=f"namespace {namespace}")


def _within(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


@dataclass(frozen=True)
class NamespaceRule:
    """One rule of the administrators' probe policy: namespaces (shell patterns) and the
    ranges their agreements may (allow) and may not (deny) probe."""

    namespaces: tuple[str, ...]
    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()

    def matches(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces)


def policy_for(base: AddressPolicy, rules: Sequence[NamespaceRule], namespace: str) -> AddressPolicy:
    """The policy probes of ``namespace`` obey: the first matching rule narrows ``base``; with
    no matching rule, ``base`` alone (the behaviour without a probe policy)."""
    rule = next((r for r in rules if r.matches(namespace)), None)
    return base if rule is None else base.narrowed(rule, namespace)


def literal_address(host: str) -> str | None:
    """The host itself when it is an IP literal (brackets stripped), else None."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(bare.split("%", 1)[0]))
    except ValueError:
        return None


async def resolve_allowed(host: str, port: int, policy: AddressPolicy,
                          resolver: NameResolver | None = None) -> list[str]:
    """The addresses of ``host`` that the policy admits, in resolver order.

    Raises ProbeFailure with the policy's reason when every address is refused, and
    "DNS: cannot resolve HOST (why)" when the name does not resolve. The lookup runs on the
    event loop (probes/names.py), so a slow name server delays no other probe.
    """
    literal = literal_address(host)
    if literal is not None:
        candidates = [literal]
    else:
        candidates = await (resolver or names.RESOLVER).addresses(host)
    allowed: list[str] = []
    reasons: list[str] = []
    for address in candidates:
        reason = policy.check(address)
        if reason is None:
            allowed.append(address)
        else:
            reasons.append(reason)
    if not allowed:
        if reasons:
            raise ProbeFailure(FailureReason.POLICY, reasons[0])
        raise ProbeFailure(FailureReason.DNS, f"DNS: no address for {host}")
    return allowed
