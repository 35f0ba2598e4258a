"""The administrators' probe policy: which namespaces may probe which address ranges.

Whoever may write an SLA makes the operator connect wherever the address policy allows. The
cluster's administrators own this file (mounted from a ConfigMap in the operator's own
namespace, never an SLA author's), given with ``--probe-policy FILE``:

    rules:
    - namespaces: [monitoring, "team-*"]    # shell patterns; the first matching rule applies
      allow: [10.0.0.0/8]                   # optional: only these ranges (and never a denied one)
      deny: [10.96.0.0/12]                  # optional: never these, on top of --deny-cidr
    - namespaces: ["*"]
      deny: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 127.0.0.0/8]

A namespace that no rule matches keeps the process-wide policy (--deny-cidr, --allow-cidr).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sla_operator.probes.policy import NamespaceRule, Network, parse_cidr


def read_policy_file(path: str | Path) -> tuple[NamespaceRule, ...]:
    """The rules of ``path``; ValueError naming the file and field when it is not valid."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"probe policy {path}: cannot read it: {error}") from None
    try:
        return parse_policy(loaded)
    except ValueError as error:
        raise ValueError(f"probe policy {path}: {error}") from None


def parse_policy(document: Any) -> tuple[NamespaceRule, ...]:
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise ValueError("rules: expected a list of {namespaces, allow, deny}")
    unknown = set(document) - {"rules"}
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown field (allowed: rules)")
    return tuple(_rule(raw, f"rules[{i}]") for i, raw in enumerate(document["rules"]))


def _rule(raw: Any, path: str) -> NamespaceRule:
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected an object with namespaces, allow, deny")
    unknown = set(raw) - {"namespaces", "allow", "deny"}
    if unknown:
        raise ValueError(f"{path}.{sorted(unknown)[0]}: unknown field (allowed: namespaces, "
                         "allow, deny)")
    namespaces = raw.get("namespaces")
    if (not isinstance(namespaces, list) or not namespaces
            or not all(isinstance(n, str) and n for n in namespaces)):
        raise ValueError(f"{path}.namespaces: expected a non-empty list of namespace patterns")
    return NamespaceRule(tuple(namespaces), _ranges(raw.get("allow"), f"{path}.allow"),
                         _ranges(raw.get("deny"), f"{path}.deny"))


def _ranges(raw: Any, path: str) -> tuple[Network, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a list of CIDR ranges")
    ranges = []
    for index, text in enumerate(raw):
        try:
            ranges.append(parse_cidr(str(text)))
        except ValueError as error:
            raise ValueError(f"{path}[{index}]: {error}") from None
    return tuple(ranges)
