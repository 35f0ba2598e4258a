"""spec.alerting.tiers as the real API server enforces them; the operator's own parse errors
(field paths included) are in tests/unit/test_alert_tiers.py.

Bad manifests go with ``--validate=false`` so that the API server itself rejects them, naming
the field (see test_crd_schemas)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from test_crd_schemas import MINIMAL_SLA, Kubectl, create, get_json, manifest, patched
from test_crd_schemas import crds as crds  # the fixture that applies the CRDs

from sla_operator.domain.parse import agreement_from_manifest

pytestmark = pytest.mark.e2e

TIERS = [{"name": "fast", "factor": 10, "longWindow": "2h", "shortWindow": "10m",
          "severity": "ticket"},
         {"name": "long-term", "enabled": False},
         {"name": "weekly", "factor": 0.5, "longWindow": "7d", "shortWindow": "12h",
          "severity": "ticket"}]

REJECTED: list[tuple[str, list[Any], str]] = [
    ("severity", [{"name": "fast", "severity": "critical"}], "spec.alerting.tiers.severity"),
    ("factor-small", [{"name": "fast", "factor": 0.001}], "spec.alerting.tiers.factor"),
    ("factor-large", [{"name": "fast", "factor": 1001}], "spec.alerting.tiers.factor"),
    ("factor-text", [{"name": "fast", "factor": "fast"}], "spec.alerting.tiers.factor"),
    ("window", [{"name": "fast", "longWindow": "1.5h"}], "spec.alerting.tiers.longWindow"),
    ("window-empty", [{"name": "fast", "shortWindow": ""}], "spec.alerting.tiers.shortWindow"),
    ("name-missing", [{"factor": 2}], "spec.alerting.tiers.name"),
    ("name", [{"name": "Fast!"}], "spec.alerting.tiers.name"),
    ("same-name", [{"name": "fast"}, {"name": "fast", "factor": 2}],
     "spec.alerting.tiers[1]: Duplicate value"),
]


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl, crds: None) -> Iterator[str]:
    name = f"sla-tiers-e2e-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_tiers_are_accepted_kept_and_read_by_the_operator(kubectl: Kubectl, namespace: str) -> None:
    create(kubectl, namespace, manifest("ServiceLevelAgreement", "tiers-ok",
                                        patched(MINIMAL_SLA, alerting={"tiers": TIERS})))
    stored = get_json(kubectl, namespace, "sla/tiers-ok")
    assert stored["spec"]["alerting"]["tiers"] == TIERS
    tiers = agreement_from_manifest(stored).alerting.tiers
    assert [(t.name, t.severity, t.long_window) for t in tiers] == [
        ("fast", "ticket", "2h"), ("medium", "page", "6h"), ("slow", "ticket", "1d"),
        ("weekly", "ticket", "7d")]


@pytest.mark.parametrize(("case", "tiers", "field"), REJECTED, ids=[c[0] for c in REJECTED])
def test_bad_tiers_are_rejected_naming_the_field(
        kubectl: Kubectl, namespace: str, case: str, tiers: list[Any], field: str) -> None:
    result = create(kubectl, namespace, manifest("ServiceLevelAgreement", f"tiers-{case}",
                                                 patched(MINIMAL_SLA, alerting={"tiers": tiers})),
                    check=False)
    assert result.returncode != 0, f"{case} was accepted"
    assert "is invalid" in result.stderr, result.stderr
    assert field in result.stderr, result.stderr
