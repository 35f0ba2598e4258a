"""Which process handles which agreement when a fleet is split over shards (`run --shards N
--shard I`).

An object belongs to the shard ``shard_of(namespace, name, count)``: a jump consistent hash
(Lamping and Veach, 2014) of the first 8 bytes of SHA-256 of ``namespace/name``. SHA-256, not
Python's ``hash()``, so every process and every release agrees; jump hashing, so going from N
to N+1 shards moves about 1/(N+1) of the agreements (all to the new shard) instead of nearly all
of them, as ``hash mod N`` would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_MASK = (1 << 64) - 1
_MULTIPLIER = 2862933555777941757  # the 64-bit linear congruential step of the paper


def stable_key(namespace: str, name: str) -> int:
    """A 64-bit number from ``namespace/name``, the same in every process and release."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash: the bucket in [0, buckets) of a 64-bit ``key``."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    key &= _MASK
    bucket, candidate = -1, 0
    while candidate < buckets:
        bucket = candidate
        key = (key * _MULTIPLIER + 1) & _MASK
        candidate = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard in [0, shards) that handles the object ``namespace/name``."""
    return jump_hash(stable_key(namespace, name), shards)


@dataclass(frozen=True)
class Sharding:
    """This process's part of the fleet: shard ``index`` of ``count`` (one shard: all of it)."""

    count: int = 1
    """How many shards the fleet is split into (--shards)."""
    index: int = 0
    """Which of them this process is, from 0 (--shard)."""

    def __post_init__(self) -> None:
        problem = sharding_problem(self.count, self.index)
        if problem is not None:
            raise ValueError(problem)

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def owns(self, namespace: str, name: str) -> bool:
        """Whether ``namespace/name`` falls in this shard."""
        return self.count == 1 or shard_of(namespace, name, self.count) == self.index


def sharding_problem(count: int, index: int) -> str | None:
    """What is wrong with ``--shards count --shard index``, in the flags' words; None if nothing."""
    if count < 1:
        return f"--shards must be at least 1, got {count}"
    if not 0 <= index < count:
        allowed = "0" if count == 1 else f"0..{count - 1}"
        return f"--shard must be in {allowed} with --shards {count}, got {index}"
    return None
