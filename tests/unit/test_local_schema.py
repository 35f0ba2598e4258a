"""Manifests from files meet the CRD schemas as they would at `kubectl apply`, with field paths."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from sla_operator.domain.errors import Problem
from sla_operator.local.schema import field_path, to_json_schema, validate

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"


def demo_documents() -> list[dict[str, Any]]:
    return [d for p in sorted(DEMO.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def demo_shop() -> dict[str, Any]:
    return copy.deepcopy(next(d for d in demo_documents() if d["metadata"]["name"] == "demo-shop"))


@pytest.mark.parametrize("document", demo_documents(), ids=lambda d: d["metadata"]["name"])
def test_the_demo_manifests_are_valid(document: dict[str, Any]) -> None:
    assert validate(document["kind"], document) == []


def test_a_bad_duration_names_its_field_and_what_is_allowed() -> None:
    shop = demo_shop()
    shop["spec"]["endpoints"][0]["timeout"] = "5 seconds"
    (problem,) = validate("ServiceLevelAgreement", shop)
    assert problem.path == "spec.endpoints[0].timeout"
    assert "'5 seconds'" in problem.message and "shorter than interval" in problem.message


def test_an_unknown_field_is_an_error_not_silently_dropped() -> None:
    shop = demo_shop()
    shop["spec"]["endpoints"][1]["timout"] = "1s"
    (problem,) = validate("ServiceLevelAgreement", shop)
    assert problem.path == "spec.endpoints[1].timout"
    assert problem.message.startswith("unknown field; allowed here:") and "timeout" in problem.message


def test_a_missing_required_field_is_named() -> None:
    shop = demo_shop()
    del shop["spec"]["objective"]
    assert validate("ServiceLevelAgreement", shop) == [Problem("spec.objective", "is required")]


def test_a_value_outside_an_enum_lists_the_allowed_values() -> None:
    shop = demo_shop()
    shop["spec"]["environment"] = "prod"
    (problem,) = validate("ServiceLevelAgreement", shop)
    assert problem.path == "spec.environment"
    assert "production" in problem.message and "sandbox" in problem.message


def test_an_endpoint_with_two_probe_kinds_is_told_to_pick_one() -> None:
    shop = demo_shop()
    shop["spec"]["endpoints"][0]["tcp"] = {"host": "127.0.0.1", "port": 80}
    (problem,) = validate("ServiceLevelAgreement", shop)
    assert problem == Problem("spec.endpoints[0]", "set exactly one of: http | tcp | dns | grpc | tls")


def test_a_window_with_both_a_schedule_and_a_start_is_refused() -> None:
    window = {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
              "metadata": {"name": "w"},
              "spec": {"schedule": "0 3 * * SUN", "duration": "1h", "start": "2026-12-01T00:00:00Z"}}
    (problem,) = validate("MaintenanceWindow", window)
    assert problem.path == "spec" and "start+end | schedule+duration" in problem.message


def test_every_problem_is_reported_at_once() -> None:
    shop = demo_shop()
    shop["spec"]["objective"] = "150"
    shop["spec"]["endpoints"][0]["interval"] = "often"
    paths = [p.path for p in validate("ServiceLevelAgreement", shop)]
    assert paths == ["spec.endpoints[0].interval", "spec.objective"]


def test_the_status_is_the_operators_and_is_not_checked() -> None:
    shop = demo_shop()
    shop["status"] = {"anything": ["goes"]}
    assert validate("ServiceLevelAgreement", shop) == []


def test_nullable_fields_accept_null_after_translation() -> None:
    schema = to_json_schema({"type": "string", "nullable": True, "x-kubernetes-int-or-string": True})
    assert schema == {"type": ["string", "null"]}


def test_objects_that_keep_unknown_fields_stay_open() -> None:
    schema = to_json_schema({"type": "object", "properties": {"a": {"type": "string"}},
                             "x-kubernetes-preserve-unknown-fields": True})
    assert "additionalProperties" not in schema


@pytest.mark.parametrize(("parts", "path"), [
    (["spec", "endpoints", 0, "http", "url"], "spec.endpoints[0].http.url"),
    (["spec"], "spec"),
    ([], ""),
])
def test_field_paths_read_like_kubectl_explain(parts: list[str | int], path: str) -> None:
    assert field_path(parts) == path
