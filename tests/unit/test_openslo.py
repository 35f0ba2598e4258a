"""OpenSLO v1: agreements exported as Service, SLO and AlertPolicy documents, and SLOs imported
as agreements, round trip; on the specification's own examples (tests/fixtures/openslo,
sources in its SOURCE.md) what an agreement cannot express is refused, naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sla_operator.cli import main
from sla_operator.domain.alerts import tiers_for
from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import Agreement
from sla_operator.domain.openslo_export import export_agreement, export_all
from sla_operator.domain.openslo_import import Imported, Refused, import_documents
from sla_operator.domain.parse import agreement_from_manifest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "openslo"
ENDPOINTS = [{"name": "api", "http": {"url": "https://shop.example.com/healthz"}}]


def fixture(name: str) -> list[Any]:
    return [d for d in yaml.safe_load_all((FIXTURES / name).read_text()) if d is not None]


def agreement(**spec: Any) -> Agreement:
    return agreement_from_manifest({
        "apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
        "metadata": {"name": spec.pop("name", "shop"), "namespace": "demo"},
        "spec": {"service": "Demo Shop", "objective": "99.5", "endpoints": ENDPOINTS, **spec}})


def imported(documents: list[Any], namespace: str | None = None) -> list[Imported]:
    results = import_documents(documents, namespace)
    assert all(isinstance(r, Imported) for r in results), results
    return [r for r in results if isinstance(r, Imported)]


def refused_fields(documents: list[Any]) -> set[str]:
    [result] = import_documents(documents)
    assert isinstance(result, Refused), result
    return {p.path for p in result.error.problems}


def filled(manifest: dict[str, Any]) -> Agreement:
    """The imported agreement once a person has filled in its endpoints."""
    return agreement_from_manifest({**manifest, "spec": {**manifest["spec"], "endpoints": ENDPOINTS}})


def test_the_spec_example_an_agreement_can_express_round_trips() -> None:
    """ratio-timeslices.yaml: one ratio objective over a rolling two weeks."""
    [original] = fixture("budgeting-method--ratio-timeslices.yaml")
    [result] = imported([original], namespace="shop")
    assert result.manifest["metadata"] == {"name": "main-page", "namespace": "shop"}
    assert result.manifest["spec"] == {"service": "web-shop", "objective": "99",
                                       "window": {"type": "rolling", "duration": "2w"},
                                       "endpoints": []}
    assert any("spec.endpoints is empty: fill in" in note for note in result.notes)
    assert any("RatioTimeslices" in note for note in result.notes)

    documents, notes, refused = export_all([filled(result.manifest)])
    assert notes == [] and refused == []
    slo = next(d for d in documents if d["kind"] == "SLO")
    for path in (("metadata", "name"), ("spec", "service"), ("spec", "timeWindow")):
        assert _at(slo, path) == _at(original, path), path
    assert slo["spec"]["objectives"][0]["target"] == original["spec"]["objectives"][0]["target"]
    # Counted per second of eligible time: occurrences of good seconds.
    assert slo["spec"]["budgetingMethod"] == "Occurrences"
    [again] = imported(documents)
    assert again.manifest == result.manifest


def _at(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


@pytest.mark.parametrize(("name", "fields"), [
    ("budgeting-method--occurences-slo.yaml",
     {"spec.indicator.spec.thresholdMetric", "spec.objectives[0].op", "spec.objectives[0].value"}),
    ("budgeting-method--timeslices-slo.yaml",
     {"spec.timeWindow[0].duration", "spec.timeWindow[0].calendar.startTime",
      "spec.budgetingMethod", "spec.objectives"}),
    ("treat-low-traffic-as-equally-important--timeslices-slo.yaml",
     {"spec.timeWindow[0].calendar.startTime", "spec.budgetingMethod",
      "spec.objectives[0].timeSliceTarget"}),
    ("readme--slo-inline-indicator.yaml", {"spec.timeWindow", "spec.budgetingMethod"}),
])
def test_spec_examples_an_agreement_cannot_express_are_refused_naming_each_field(
        name: str, fields: set[str]) -> None:
    assert refused_fields(fixture(name)) == fields


def test_a_refusal_says_what_an_agreement_allows() -> None:
    [result] = import_documents(fixture("budgeting-method--timeslices-slo.yaml"))
    assert isinstance(result, Refused)
    text = str(result.error)
    assert "'1m' is not a calendar period of an agreement: 1w, 1M, 1Q or 1Y" in text
    assert "2022-01-01 12:00:00: an agreement's calendar periods start at local midnight" in text
    assert "2 objectives: an agreement has exactly one" in text


@pytest.mark.parametrize("policy", ["readme--alert-policy-inline-condition.yaml",
                                    "readme--alert-policy-condition-ref.yaml"])
def test_the_spec_s_alert_policy_is_refused_naming_its_condition_fields(policy: str) -> None:
    """op lte (alert while the burn is low) and alertAfter 5m: no tier can say either."""
    [slo] = fixture("budgeting-method--ratio-timeslices.yaml")
    slo["spec"]["alertPolicies"] = [{"alertPolicyRef": "AlertPolicy"}]
    fields = refused_fields([slo, *fixture(policy), *fixture("readme--alert-condition.yaml")])
    where = ("spec.alertPolicies[0] (AlertPolicy).spec.conditions[0]"
             + (" (cpu-usage-breach)" if "ref" in policy else ""))
    assert fields == {f"{where}.spec.condition.op", f"{where}.spec.condition.alertAfter"}


def test_an_alert_policy_missing_from_the_file_is_named() -> None:
    [slo] = fixture("budgeting-method--ratio-timeslices.yaml")
    slo["spec"]["alertPolicies"] = [{"alertPolicyRef": "nowhere"}]
    assert refused_fields([slo]) == {"spec.alertPolicies[0].alertPolicyRef"}


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml"))
                         + sorted((ROOT / "examples" / "demo").glob("*.yaml")), ids=str)
def test_our_agreements_round_trip_through_openslo(path: Path) -> None:
    originals = [agreement_from_manifest(d) for d in yaml.safe_load_all(path.read_text())
                 if d and d.get("kind") == "ServiceLevelAgreement"]
    documents, notes, refused = export_all(originals)
    assert notes == [] and refused == []
    back = {(r.manifest["metadata"]["namespace"], r.manifest["metadata"]["name"]): filled(r.manifest)
            for r in imported(documents)}
    assert len(back) == len(originals)
    for original in originals:
        again = back[original.key]
        assert (again.service, again.objective, again.window, again.environment, again.labels) == (
            original.service, original.objective, original.window, original.environment,
            original.labels)
        assert again.alerting.enabled == original.alerting.enabled
        assert tiers_for(again) == tiers_for(original)


def test_changed_new_and_disabled_tiers_round_trip() -> None:
    original = agreement(window={"type": "calendar", "period": "quarter", "timeZone": "Europe/Berlin"},
                         alerting={"tiers": [
                             {"name": "fast", "factor": 10, "shortWindow": "10m"},
                             {"name": "slow", "enabled": False},
                             {"name": "weekly", "factor": 0.5, "longWindow": "1w",
                              "shortWindow": "12h", "severity": "ticket"}]})
    documents, _, _ = export_all([original])
    policies = {d["metadata"]["name"]: d for d in documents if d["kind"] == "AlertPolicy"}
    assert sorted(policies) == ["shop-fast", "shop-long-term", "shop-medium", "shop-weekly"]
    condition = policies["shop-fast"]["spec"]["conditions"][0]["spec"]
    assert condition == {"severity": "page", "condition": {
        "kind": "burnrate", "op": "gt", "threshold": 10, "lookbackWindow": "1h", "alertAfter": "0m"}}
    assert policies["shop-fast"]["metadata"]["annotations"]["sla.dev/short-window"] == "10m"
    [back] = imported(documents)
    assert back.manifest["spec"]["window"] == {"type": "calendar", "period": "quarter",
                                               "timeZone": "Europe/Berlin"}
    assert filled(back.manifest).alerting.tiers == original.alerting.tiers


def test_the_slo_reads_the_operator_s_own_counters() -> None:
    [service, slo, *_], _ = export_agreement(agreement(), "shop")
    assert (service["kind"], service["metadata"]["displayName"]) == ("Service", "Demo Shop")
    ratio = slo["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio["counter"] is True
    assert ratio["bad"]["metricSource"] == {"type": "Prometheus", "spec": {
        "query": 'sum(sla_downtime_seconds_total{namespace="demo",agreement="shop"})'}}
    assert ratio["total"]["metricSource"]["spec"]["query"] == (
        'sum(sla_eligible_seconds_total{namespace="demo",agreement="shop"})')
    assert slo["spec"]["timeWindow"] == [{"duration": "1M", "isRolling": False, "calendar": {
        "startTime": "2024-01-01 00:00:00", "timeZone": "UTC"}}]
    assert slo["spec"]["objectives"] == [{"displayName": "Demo Shop", "target": 0.995}]


def test_alerting_off_exports_no_policy_and_imports_off() -> None:
    documents, _, _ = export_all([agreement(alerting={"enabled": False})])
    assert [d["kind"] for d in documents] == ["Service", "SLO"]
    [back] = imported(documents)
    assert back.manifest["spec"]["alerting"] == {"enabled": False}


def test_what_openslo_cannot_hold_is_said() -> None:
    with pytest.raises(SpecError, match=r"spec\.window\.duration: a rolling window of .* not whole minutes"):
        export_agreement(agreement(window={"type": "rolling", "duration": "90s"}), "shop")
    tiers = [{"name": "fast", "shortWindow": "1m30s"}]
    documents, notes = export_agreement(agreement(alerting={"tiers": tiers}), "shop")
    assert "shop-fast" not in {d["metadata"]["name"] for d in documents}
    assert notes == ["agreement demo/shop: tier 'fast' left out: its windows (1h, 1m30s) are not "
                     "whole minutes, which OpenSLO's duration shorthand cannot hold"]


def test_agreements_of_one_name_in_two_namespaces_keep_apart() -> None:
    one = agreement()
    other = agreement_from_manifest({"metadata": {"name": "shop", "namespace": "eu"},
                                     "spec": {"service": "Demo Shop", "objective": "99",
                                              "endpoints": ENDPOINTS}})
    documents, _, _ = export_all([one, other])
    assert sorted(d["metadata"]["name"] for d in documents if d["kind"] == "SLO") == [
        "demo-shop", "eu-shop"]
    back = {(r.manifest["metadata"]["namespace"], r.manifest["metadata"]["name"])
            for r in imported(documents)}
    assert back == {("demo", "shop"), ("eu", "shop")}


def test_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "openslo", "--manifests", str(ROOT / "examples" / "demo")]) == 0
    exported = capsys.readouterr().out
    kinds = [d["kind"] for d in yaml.safe_load_all(exported)]
    assert kinds.count("SLO") == 2 and "AlertPolicy" in kinds and "Service" in kinds
    stream = tmp_path / "openslo.yaml"
    stream.write_text(exported)
    assert main(["import", "openslo", str(stream)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# Imported from OpenSLO SLO ") and "# - spec.endpoints is empty" in out
    assert "2 agreement(s) written, 0 SLO(s) refused" in err

    assert main(["import", "openslo", str(FIXTURES / "budgeting-method--occurences-slo.yaml")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "SLO search-slo refused: spec.indicator.spec.thresholdMetric: " in err
    assert main(["import", "openslo", str(tmp_path / "missing.yaml")]) == 2
