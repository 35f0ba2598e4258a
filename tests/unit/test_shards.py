"""Shards: a stable hash of namespace/name puts every agreement in exactly one shard."""

from __future__ import annotations

from collections import Counter

import pytest

from sla_operator.domain.shards import Sharding, shard_of, stable_key

NAMES = [(f"team-{i % 37}", f"sla-{i}") for i in range(10_000)]


def test_the_key_of_an_object_is_fixed_across_processes_and_releases() -> None:
    # SHA-256 of "namespace/name", first 8 bytes: a changed value would move agreements
    # between the shards of a running fleet on upgrade.
    assert stable_key("payments", "payments-api") == 0xD87B80EF4529C277
    assert stable_key("default", "web") == 0x82B3ADE9D00CD164


@pytest.mark.parametrize(("namespace", "name", "by_count"), [
    ("payments", "payments-api", {1: 0, 2: 1, 3: 1, 4: 3, 10: 9}),
    ("default", "web", {1: 0, 2: 0, 3: 2, 4: 0, 10: 4}),
    ("shop", "checkout", {1: 0, 2: 0, 3: 2, 4: 2, 10: 2}),
])
def test_an_agreement_lands_in_the_same_shard_every_time(
        namespace: str, name: str, by_count: dict[int, int]) -> None:
    assert {count: shard_of(namespace, name, count) for count in by_count} == by_count


def test_namespace_and_name_both_count() -> None:
    assert stable_key("a", "b-c") != stable_key("a-b", "c")
    assert stable_key("shop", "web") != stable_key("web", "shop")


@pytest.mark.parametrize("count", [2, 3, 5, 8])
def test_every_name_is_owned_by_exactly_one_shard(count: int) -> None:
    shards = [Sharding(count, index) for index in range(count)]
    for namespace, name in NAMES:
        assert sum(shard.owns(namespace, name) for shard in shards) == 1


@pytest.mark.parametrize("count", [2, 3, 5, 8])
def test_ten_thousand_names_spread_evenly_over_the_shards(count: int) -> None:
    sizes = Counter(shard_of(namespace, name, count) for namespace, name in NAMES)
    assert set(sizes) == set(range(count))
    fair = len(NAMES) / count
    assert all(abs(size - fair) < 0.1 * fair for size in sizes.values()), sizes


def test_the_shard_is_the_stable_key_mod_the_count() -> None:
    assert all(shard_of(ns, n, 7) == stable_key(ns, n) % 7 for ns, n in NAMES[:500])


def test_a_single_shard_owns_everything() -> None:
    assert all(Sharding().owns(ns, n) for ns, n in NAMES[:100])
    assert not Sharding().sharded and Sharding(2, 1).sharded


@pytest.mark.parametrize(("count", "index", "message"), [
    (0, 0, "--shards must be at least 1, got 0"),
    (-2, 0, "--shards must be at least 1, got -2"),
    (2, 2, "--shard must be in 0..1 with --shards 2, got 2"),
    (3, -1, "--shard must be in 0..2 with --shards 3, got -1"),
    (1, 1, "--shard must be in 0 with --shards 1, got 1"),
])
def test_a_shard_outside_the_count_is_refused_naming_the_flag(
        count: int, index: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sharding(count, index)
