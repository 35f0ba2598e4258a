"""Service credit tiers as the real API server enforces them, and creditPercent in the history.

Bad manifests go with ``--validate=false`` so that the API server itself rejects them, naming
the field (see test_crd_schemas)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from test_crd_schemas import (
    MINIMAL_SLA,
    Kubectl,
    create,
    get_json,
    manifest,
    patched,
    write_status,
)
from test_crd_schemas import crds as crds  # the fixture that applies the CRDs

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl, crds: None) -> Iterator[str]:
    name = f"sla-credits-e2e-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)

TIERS = [{"below": "99.9", "percent": 10}, {"below": "99.0", "percent": 25},
         {"below": "95.0", "percent": 100}]

REJECTED: list[tuple[str, list[Any], str]] = [
    ("below-100", [{"below": "100", "percent": 10}], "spec.credits.below"),
    ("below-number", [{"below": 99.9, "percent": 10}], "spec.credits.below"),
    ("below-five-decimals", [{"below": "99.99999", "percent": 10}], "spec.credits.below"),
    ("percent-0", [{"below": "99.9", "percent": 0}], "spec.credits.percent"),
    ("percent-101", [{"below": "99.9", "percent": 101}], "spec.credits.percent"),
    ("percent-missing", [{"below": "99.9"}], "spec.credits.percent"),
    ("same-threshold", [{"below": "99.9", "percent": 10}, {"below": "99.9", "percent": 20}],
     "spec.credits[1]: Duplicate value"),
]


def test_credit_tiers_are_accepted_and_kept(kubectl: Kubectl, namespace: str) -> None:
    create(kubectl, namespace, manifest("ServiceLevelAgreement", "credits-ok",
                                        patched(MINIMAL_SLA, credits=TIERS)))
    stored = get_json(kubectl, namespace, "sla/credits-ok")
    assert stored["spec"]["credits"] == TIERS


@pytest.mark.parametrize(("case", "credits", "field"), REJECTED, ids=[c[0] for c in REJECTED])
def test_bad_credit_tiers_are_rejected_naming_the_field(
        kubectl: Kubectl, namespace: str, case: str, credits: list[Any], field: str) -> None:
    result = create(kubectl, namespace, manifest("ServiceLevelAgreement", f"credits-{case}",
                                                 patched(MINIMAL_SLA, credits=credits)),
                    check=False)
    assert result.returncode != 0, f"{case} was accepted"
    assert "is invalid" in result.stderr, result.stderr
    assert field in result.stderr, result.stderr


def test_credit_percent_in_the_history_survives_pruning_and_is_bounded(
        kubectl: Kubectl, namespace: str) -> None:
    create(kubectl, namespace, manifest("ServiceLevelAgreement", "credits-history",
                                        patched(MINIMAL_SLA, credits=TIERS)))
    entry = {"period": "2026-11", "availability": "99.8999", "objective": "99.9", "met": False,
             "creditPercent": 10, "downtimeSeconds": 2593, "incidents": 1}
    stored = write_status(kubectl, namespace, "sla/credits-history", {"history": [entry]})
    assert stored["history"] == [entry]
    bad = write_status_result(kubectl, namespace, "sla/credits-history",
                              {"history": [{**entry, "creditPercent": 101}]})
    assert bad.returncode != 0 and "creditPercent" in bad.stderr, bad.stderr


def write_status_result(kubectl: Kubectl, namespace: str, resource: str,
                        status: dict[str, Any]) -> Any:
    return kubectl("patch", "-n", namespace, resource, "--subresource=status", "--type=json",
                   "-p", json.dumps([{"op": "add", "path": "/status", "value": status}]),
                   check=False)
