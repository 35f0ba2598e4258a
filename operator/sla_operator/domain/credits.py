"""Service credits: what a period's availability earns the customer back.

A tier ``{below: "99.9", percent: 10}`` applies to a period whose availability, as the
statement shows it (a percent with 4 decimals, never rounded up), is strictly below 99.9: a
period at exactly 99.9000% meets that threshold and earns nothing from this tier. Of the tiers
that apply, the largest credit wins. A period with no eligible time has no availability and
earns no credit: nothing was measured, so nothing was missed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.model import CreditTier

# A percent strictly between 0 and 100 with at most 4 decimals: the precision availability is
# shown with, so a customer compares like with like.
_BELOW = re.compile(r"^(0\.[0-9]{0,3}[1-9]|[1-9][0-9]?(\.[0-9]{1,4})?)$")


def credit_percent(tiers: Sequence[CreditTier], availability: Decimal | None) -> int:
    """The credit (percent of the period's fees) that ``availability`` (percent) earns."""
    if availability is None:
        return 0
    return max((tier.percent for tier in tiers if availability < tier.below), default=0)


def credit_for_text(tiers: Sequence[CreditTier], availability: object) -> int:
    """As ``credit_percent`` for an availability written as text (a history entry's)."""
    if not tiers or not isinstance(availability, str):
        return 0
    try:
        value = Decimal(availability)
    except InvalidOperation:
        return 0
    return credit_percent(tiers, value if value.is_finite() else None)


def parse_credits(raw: object, objective: Decimal | None) -> tuple[CreditTier, ...]:
    """``spec.credits`` into tiers, highest threshold first, or SpecError with every problem.

    A lower threshold must earn a larger credit, and no threshold may lie above the objective
    (a period that met its objective owes nothing)."""
    path = "spec.credits"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError.at(path, "must be a list of tiers such as {below: \"99.9\", percent: 10}")
    problems: list[Problem] = []
    tiers: list[tuple[int, CreditTier]] = []
    for index, item in enumerate(raw):
        tier = _tier(item, f"{path}[{index}]", objective, problems)
        if tier is not None:
            tiers.append((index, tier))
    seen: dict[Decimal, int] = {}
    for index, tier in tiers:
        if tier.below in seen:
            problems.append(Problem(f"{path}[{index}].below", (
                f"{tier.below} is also the threshold of {path}[{seen[tier.below]}]; "
                "each tier needs its own")))
        seen.setdefault(tier.below, index)
    ordered = sorted(tiers, key=lambda pair: pair[1].below, reverse=True)
    for (_, higher), (index, lower) in pairwise(ordered):
        if lower.below < higher.below and lower.percent <= higher.percent:
            problems.append(Problem(f"{path}[{index}].percent", (
                f"{lower.percent} must be larger than {higher.percent}, the credit below "
                f"{higher.below}: a lower availability earns a larger credit")))
    if problems:
        raise SpecError(problems)
    return tuple(tier for _, tier in ordered)


def _tier(item: object, path: str, objective: Decimal | None,
          problems: list[Problem]) -> CreditTier | None:
    if not isinstance(item, Mapping):
        problems.append(Problem(path, "must be a tier such as {below: \"99.9\", percent: 10}"))
        return None
    below = _below(item, path, objective, problems)
    percent = _percent(item, path, problems)
    if below is None or percent is None:
        return None
    return CreditTier(below, percent)


def _below(item: Mapping[str, Any], path: str, objective: Decimal | None,
           problems: list[Problem]) -> Decimal | None:
    raw = item.get("below")
    if not isinstance(raw, str) or not _BELOW.match(raw):
        problems.append(Problem(f"{path}.below", (
            f"{raw!r} is not a percentage strictly between 0 and 100 with at most 4 decimals "
            '(a decimal string such as "99.9")')))
        return None
    below = Decimal(raw)
    if objective is not None and below > objective:
        problems.append(Problem(f"{path}.below", (
            f"{raw} is above the objective ({objective}): a period that met its objective "
            "owes no credit")))
        return None
    return below


def _percent(item: Mapping[str, Any], path: str, problems: list[Problem]) -> int | None:
    raw = item.get("percent")
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 100:
        problems.append(Problem(f"{path}.percent",
                                f"{raw!r} is not a whole percent of the fees from 1 to 100"))
        return None
    return raw
