"""Errors a user can act on: each names the field path, what was wrong and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, at one field path (e.g. ``spec.endpoints[0].timeout``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecError(ValueError):
    """A spec that cannot be turned into domain objects; carries every problem found."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, path: str, message: str) -> SpecError:
        return cls([Problem(path, message)])


class SecretRefused(Exception):
    """A Secret a probe header names cannot be used; the message says why (no such Secret or
    key, not labelled for probes, forbidden) and never contains the value."""
