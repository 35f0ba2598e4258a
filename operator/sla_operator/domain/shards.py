"""Which process handles which agreement when a fleet is split over shards (`run --shards N
--shard I`).

An object belongs to shard ``shard_of(namespace, name, count)``: the first 8 bytes of SHA-256
of ``namespace/name``, as a number, mod N. SHA-256, not Python's ``hash()``, so every process
and every release agrees. Changing N moves most agreements to another shard; the shards are
restarted together for that anyway (see docs/API.md, "Shards").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def stable_key(namespace: str, name: str) -> int:
    """A 64-bit number from ``namespace/name``, the same in every process and release."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard in [0, shards) that handles the object ``namespace/name``."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    return stable_key(namespace, name) % shards


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
