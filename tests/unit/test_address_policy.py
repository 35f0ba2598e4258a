"""The address policy: which resolved addresses probes may connect to."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla_operator.probes.names import NameResolver
from sla_operator.probes.outcome import ProbeFailure
from sla_operator.probes.policy import DEFAULT_DENY, AddressPolicy, resolve_allowed


def test_the_cloud_metadata_address_is_denied_by_default() -> None:
    assert AddressPolicy().check("169.254.169.254") == "address 169.254.169.254 denied by policy"


def test_the_ipv6_cloud_metadata_address_is_denied_by_default() -> None:
    assert AddressPolicy().check("fd00:ec2::254") == "address fd00:ec2::254 denied by policy"


def test_an_ipv4_mapped_metadata_address_is_denied_too() -> None:
    assert AddressPolicy().check("::ffff:169.254.169.254") is not None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.10", "203.0.113.7"])
def test_ordinary_addresses_are_allowed_by_default(address: str) -> None:
    assert AddressPolicy().check(address) is None


def test_given_deny_ranges_add_to_the_defaults() -> None:
    policy = AddressPolicy.from_cidrs(deny=["10.0.0.0/8"], allow=[])
    assert policy.check("10.1.2.3") == "address 10.1.2.3 denied by policy"
    assert policy.check("169.254.169.254") is not None
    assert policy.deny[: len(DEFAULT_DENY)] == DEFAULT_DENY


def test_an_allow_list_admits_only_its_ranges() -> None:
    policy = AddressPolicy.from_cidrs(deny=[], allow=["127.0.0.0/8", "fd00::/8"])
    assert policy.check("127.0.0.1") is None
    assert policy.check("fd00::1") is None
    assert policy.check("10.0.0.1") == "address 10.0.0.1 not in the allowed ranges"
    assert policy.check("::1") == "address ::1 not in the allowed ranges"


def test_deny_wins_over_allow() -> None:
    policy = AddressPolicy.from_cidrs(deny=["127.0.0.3/32"], allow=["127.0.0.0/8"])
    assert policy.check("127.0.0.2") is None
    assert policy.check("127.0.0.3") == "address 127.0.0.3 denied by policy"


def test_an_invalid_cidr_is_rejected_with_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"invalid CIDR '10\.0\.0\.0/33': expected an IPv4"):
        AddressPolicy.from_cidrs(deny=["10.0.0.0/33"], allow=[])


def test_something_that_is_not_an_address_is_refused() -> None:
    assert AddressPolicy().check("example.com") == "address example.com is not an IP address"


@given(st.integers(min_value=0, max_value=2**16 - 1))
def test_every_link_local_address_is_denied(offset: int) -> None:
    address = ipaddress.IPv4Address("169.254.0.0") + offset
    assert AddressPolicy().check(str(address)) is not None


def hosts(tmp_path: Path, name: str, addresses: list[str]) -> NameResolver:
    """A resolver whose hosts file maps ``name`` to ``addresses`` (the first place it looks)."""
    path = tmp_path / "hosts"
    path.write_text("".join(f"{address} {name}\n" for address in addresses))
    return NameResolver(hosts_file=path, nameservers=["192.0.2.1"])  # never asked


async def test_a_hostname_resolving_to_the_metadata_address_is_denied(tmp_path: Path) -> None:
    resolver = hosts(tmp_path, "metadata.example", ["169.254.169.254"])
    with pytest.raises(ProbeFailure, match=r"^address 169\.254\.169\.254 denied by policy$"):
        await resolve_allowed("metadata.example", 80, AddressPolicy(), resolver)


async def test_only_the_allowed_addresses_of_a_hostname_are_returned(tmp_path: Path) -> None:
    resolver = hosts(tmp_path, "mixed.example", ["169.254.169.254", "127.0.0.1", "127.0.0.1", "::1"])
    assert await resolve_allowed("mixed.example", 80, AddressPolicy(), resolver) == [
        "127.0.0.1", "::1"]


async def test_an_ip_literal_is_checked_without_resolving(tmp_path: Path) -> None:
    resolver = hosts(tmp_path, "fd00:ec2::254", ["127.0.0.1"])
    with pytest.raises(ProbeFailure, match="denied by policy"):
        await resolve_allowed("[fd00:ec2::254]", 80, AddressPolicy(), resolver)
