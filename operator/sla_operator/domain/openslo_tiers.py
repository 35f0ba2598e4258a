"""OpenSLO alert policies as an agreement's burn-rate tiers (``spec.alerting.tiers``).

A policy with one ``burnrate`` condition (``op: gt`` or ``gte``, a threshold, a lookback
window, ``alertAfter`` 0, severity ``page`` or ``ticket``) is one tier: the threshold is the
factor and the lookback window the long window. The short window comes from the
``sla.dev/short-window`` annotation that ``export openslo`` writes, or else is a twelfth of the
long one, as in the SRE workbook's tiers (1h and 5m). The tiers are written as changes to the
defaults: a default tier the SLO does not have is disabled, one it changes is given in full.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sla_operator.domain.alert_tiers import DEFAULT_TIERS, WINDOW_PATTERN, BurnTier, window_seconds
from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.openslo_export import ANNOTATION_SHORT_WINDOW, ANNOTATION_TIER, shorthand

Document = dict[str, Any]
LOOKBACK: Final = re.compile(r"^[1-9][0-9]*[mhdw]$")
TIER_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SEVERITIES: Final = ("page", "ticket")


@dataclass
class Index:
    """The documents of a stream by kind and name."""

    slos: list[Mapping[str, Any]] = field(default_factory=list)
    services: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    slis: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    policies: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    conditions: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, documents: Sequence[object]) -> Index:
        index = cls()
        named = {"Service": index.services, "SLI": index.slis, "AlertPolicy": index.policies,
                 "AlertCondition": index.conditions}
        for document in documents:
            if not isinstance(document, Mapping):
                continue
            kind = document.get("kind")
            if kind == "SLO":
                index.slos.append(document)
            elif kind in named:
                named[kind][str((document.get("metadata") or {}).get("name"))] = document
        return index


def tiers_spec(raw: object, index: Index,
               sandbox: bool = False) -> tuple[list[Document] | None, list[str]]:
    """``spec.alerting.tiers`` for the SLO's alert policies (None: the defaults as they are),
    and notes for a person; SpecError naming each field that no tier can express. A sandbox
    agreement never pages, so its policies lack the page tiers without disabling them."""
    if not raw:
        return None, ["no alert policies: the operator's default burn-rate tiers apply"]
    if not isinstance(raw, list):
        raise SpecError.at("spec.alertPolicies", "must be a list")
    problems: list[Problem] = []
    notes: list[str] = []
    tiers: list[BurnTier] = []
    for number, item in enumerate(raw):
        path = f"spec.alertPolicies[{number}]"
        try:
            tier, note = _tier(_resolve(item, index.policies, path, "alertPolicyRef"), index, path)
        except SpecError as error:
            problems.extend(error.problems)
            continue
        if any(t.name == tier.name for t in tiers):
            problems.append(Problem(path, f"a second tier named {tier.name!r}"))
        tiers.append(tier)
        notes.extend(note)
    if problems:
        raise SpecError(problems)
    return _changes(tiers, sandbox), notes


def _resolve(item: object, named: Mapping[str, Mapping[str, Any]], path: str,
             ref: str) -> tuple[Mapping[str, Any], str]:
    """An inline object, or the one its reference names in the file."""
    if isinstance(item, Mapping) and item.get(ref) is None:
        return item, path
    name = item.get(ref) if isinstance(item, Mapping) else item
    found = named.get(str(name))
    if found is None:
        raise SpecError.at(f"{path}.{ref}" if isinstance(item, Mapping) else path,
                           f"no object named {name!r} in the file")
    return found, f"{path} ({name})"


def _tier(policy_at: tuple[Mapping[str, Any], str], index: Index,
          path: str) -> tuple[BurnTier, list[str]]:
    policy, where = policy_at
    meta = policy.get("metadata") or {}
    spec = policy.get("spec") or {}
    annotations = meta.get("annotations") or {}
    problems: list[Problem] = []
    name = str(annotations.get(ANNOTATION_TIER) or str(meta.get("name", "")).lower())
    if not TIER_NAME.match(name):
        problems.append(Problem(f"{where}.metadata.name", f"{name!r} is not a DNS label, as a "
                                                          "tier's name must be"))
    if spec.get("alertWhenBreaching") is False:
        problems.append(Problem(f"{where}.spec.alertWhenBreaching",
                                "false: a burn-rate tier alerts while the budget burns"))
    conditions = spec.get("conditions") or []
    if len(conditions) != 1:
        problems.append(Problem(f"{where}.spec.conditions", "must hold exactly one condition"))
        raise SpecError(problems)
    condition, at = _resolve(conditions[0], index.conditions, f"{where}.spec.conditions[0]",
                             "conditionRef")
    body = condition.get("spec") or {}
    rule = body.get("condition") or {}
    severity = body.get("severity")
    if severity not in SEVERITIES:
        problems.append(Problem(f"{at}.spec.severity", f"{severity!r}: a tier's severity is "
                                                       "page or ticket"))
    if rule.get("kind", "burnrate") != "burnrate":
        problems.append(Problem(f"{at}.spec.condition.kind", f"{rule.get('kind')!r}: only "
                                                             "burnrate conditions are tiers"))
    if rule.get("op") not in ("gt", "gte"):
        problems.append(Problem(f"{at}.spec.condition.op", f"{rule.get('op')!r}: a tier alerts "
                                "when the burn rate is above its factor (gt or gte)"))
    if str(rule.get("alertAfter", "0m")) not in ("0", "0m", "0s", "0h"):
        problems.append(Problem(f"{at}.spec.condition.alertAfter", f"{rule.get('alertAfter')}: a "
                                "tier fires as soon as both its windows burn; its short window "
                                f"(annotation {ANNOTATION_SHORT_WINDOW}) is what holds it back"))
    lookback = str(rule.get("lookbackWindow"))
    if not LOOKBACK.match(lookback):
        problems.append(Problem(f"{at}.spec.condition.lookbackWindow",
                                f"{lookback!r}: minutes, hours, days or weeks (m, h, d, w)"))
    try:
        factor = Decimal(str(rule.get("threshold")))
    except InvalidOperation:
        factor = Decimal("NaN")
    if not factor.is_finite():
        problems.append(Problem(f"{at}.spec.condition.threshold", "must be a number"))
    if problems:
        raise SpecError(problems)
    short, notes = _short_window(annotations, lookback, name)
    return BurnTier(name, str(severity), factor.normalize(), lookback, short), notes


def _short_window(annotations: Mapping[str, Any], long_window: str,
                  name: str) -> tuple[str, list[str]]:
    given = annotations.get(ANNOTATION_SHORT_WINDOW)
    if isinstance(given, str) and re.match(WINDOW_PATTERN, given):
        return given, []
    twelfth = max(60, round(window_seconds(long_window) / 12 / 60) * 60)
    short = shorthand(twelfth) or "1m"
    return short, [f"tier {name!r}: short window {short}, a twelfth of its long window "
                   f"{long_window} (OpenSLO has one window per condition)"]


def _changes(tiers: Sequence[BurnTier], sandbox: bool) -> list[Document] | None:
    """The tiers as changes to the defaults; None when they are the defaults."""
    by_name = {t.name: t for t in tiers}
    changes: list[Document] = []
    for default in DEFAULT_TIERS:
        tier = by_name.get(default.name)
        if tier is None and sandbox and default.severity == "page":
            continue  # never used by a sandbox agreement: nothing to disable
        if tier is None:
            changes.append({"name": default.name, "enabled": False})
        elif tier != default:
            changes.append(_full(tier))
    defaults = {t.name for t in DEFAULT_TIERS}
    changes.extend(_full(t) for t in tiers if t.name not in defaults)
    return changes or None


def _full(tier: BurnTier) -> Document:
    factor = float(tier.factor)
    return {"name": tier.name, "factor": int(factor) if factor.is_integer() else factor,
            "longWindow": tier.long_window, "shortWindow": tier.short_window,
            "severity": tier.severity}
