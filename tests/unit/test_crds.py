"""The CRDs are the first line of validation: these tests hold their schemas to the contract.

The schemas are checked here with ``jsonschema`` (after translating the few OpenAPI-only
keywords); tests/e2e/test_crd_schemas.py checks the same cases against a real API server.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml

from sla_operator.domain.durations import DURATION_PATTERN
from sla_operator.domain.model import ProbeResult
from sla_operator.domain.notifications import route_from_manifest
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.support import support_request_from_manifest
from sla_operator.engine.evaluate import evaluate_agreement, maintenance_status
from sla_operator.engine.runtime import AgreementRuntime
from sla_operator.notify.delivery import RouteState
from sla_operator.notify.notifier import route_status

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
CHART_CRD_DIR = ROOT / "charts" / "sla-operator" / "crds"
EXAMPLES_DIR = ROOT / "examples"
CRD_FILES = sorted(CRD_DIR.glob("*.yaml"))
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.yaml"))
KINDS = {"ServiceLevelAgreement", "MaintenanceWindow", "Incident", "NotificationRoute",
         "SupportRequest"}
LOOPBACK_TARGET = re.compile(r"^(https?://)?(127\.\d+\.\d+\.\d+|localhost|\[::1\])([:/]|$)")

Schema = dict[str, Any]
Mutation = Callable[[dict[str, Any]], None]


def load_crds() -> dict[str, dict[str, Any]]:
    crds = (yaml.safe_load(path.read_text()) for path in CRD_FILES)
    return {crd["spec"]["names"]["kind"]: crd for crd in crds}


CRDS = load_crds()


def openapi_schema(kind: str) -> Schema:
    (version,) = CRDS[kind]["spec"]["versions"]
    schema: Schema = version["schema"]["openAPIV3Schema"]
    return schema


def to_json_schema(node: Any) -> Any:
    """Translate OpenAPI v3 schema keywords to JSON Schema: drop x-kubernetes-*, map nullable."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    translated = {
        key: to_json_schema(value)
        for key, value in node.items()
        if not key.startswith("x-kubernetes-") and key != "nullable"
    }
    if node.get("nullable") and "type" in node:
        translated["type"] = [node["type"], "null"]
    return translated


def schema_nodes(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every property and array item schema below ``schema``, with its dotted path."""
    for name, child in schema.get("properties", {}).items():
        child_path = f"{path}.{name}" if path else name
        yield child_path, child
        yield from schema_nodes(child, child_path)
    if "items" in schema:
        yield f"{path}[]", schema["items"]
        yield from schema_nodes(schema["items"], f"{path}[]")


def validation_errors(manifest: dict[str, Any]) -> list[str]:
    schema = to_json_schema(openapi_schema(manifest["kind"]))
    validator = jsonschema.Draft4Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


def example_manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in EXAMPLE_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in KINDS:
                found.append((f"{path.name}:{doc['metadata']['name']}", doc))
    return found


# ---------------------------------------------------------------- the CRDs themselves


def test_there_is_one_crd_per_kind_in_the_sla_dev_group() -> None:
    # LocationReports are the locations' own (sla-operator probe), not for people to write:
    # tests/unit/test_location_reports.py holds theirs.
    assert set(CRDS) == KINDS | {"LocationReport"}
    for crd in (CRDS[kind] for kind in KINDS):
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["spec"]["group"] == "sla.dev"
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["spec"]["names"]["categories"] == ["sla-dev"]
        (version,) = crd["spec"]["versions"]
        assert version["name"] == "v1alpha1"
        assert version["served"] and version["storage"]
        assert version["subresources"] == {"status": {}}
    short_names = {kind: crd["spec"]["names"]["shortNames"] for kind, crd in CRDS.items()}
    assert short_names == {"ServiceLevelAgreement": ["sla"], "MaintenanceWindow": ["mw"], "Incident": ["inc"],
                           "NotificationRoute": ["nroute"], "SupportRequest": ["sreq"],
                           "LocationReport": ["lrep"]}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_property_at_any_depth_has_a_description(kind: str) -> None:
    undocumented = [
        path
        for path, node in schema_nodes(openapi_schema(kind))
        if not node.get("description") and path != "metadata"
    ]
    assert undocumented == [], f"{kind}: add a description to {undocumented}"


def test_metadata_schemas_hold_only_their_type_as_a_1_20_api_server_requires() -> None:
    for kind in KINDS:
        assert openapi_schema(kind)["properties"]["metadata"] == {"type": "object"}, kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_schema_node_has_a_type_as_structural_schemas_require(kind: str) -> None:
    untyped = [path for path, node in schema_nodes(openapi_schema(kind)) if "type" not in node]
    assert untyped == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_default_is_valid_against_its_own_schema(kind: str) -> None:
    for path, node in schema_nodes(openapi_schema(kind)):
        if "default" in node:
            errors = jsonschema.Draft4Validator(to_json_schema(node)).iter_errors(node["default"])
            assert [e.message for e in errors] == [], path


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_duration_field_uses_the_operators_duration_pattern(kind: str) -> None:
    duration_like = {
        node["pattern"]
        for _, node in schema_nodes(openapi_schema(kind))
        if "(ms|s|m|h|d|w)" in node.get("pattern", "")
    }
    assert duration_like <= {DURATION_PATTERN}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_printer_columns_point_at_fields_of_the_schema(kind: str) -> None:
    known_paths = {"." + path for path, _ in schema_nodes(openapi_schema(kind))}
    (version,) = CRDS[kind]["spec"]["versions"]
    for column in version["additionalPrinterColumns"]:
        if column["jsonPath"].startswith(".metadata."):
            continue
        assert column["jsonPath"] in known_paths, column


def test_endpoints_are_a_map_keyed_by_name() -> None:
    endpoints = openapi_schema("ServiceLevelAgreement")["properties"]["spec"]["properties"]["endpoints"]
    assert endpoints["x-kubernetes-list-type"] == "map"
    assert endpoints["x-kubernetes-list-map-keys"] == ["name"]
    assert "name" in endpoints["items"]["required"]


def test_the_charts_crds_are_a_byte_identical_copy_of_crds() -> None:
    chart_copies = sorted(path.name for path in CHART_CRD_DIR.glob("*.yaml"))
    assert chart_copies == [path.name for path in CRD_FILES], "run `make crds` to refresh the copy"
    for source in CRD_FILES:
        copy_bytes = (CHART_CRD_DIR / source.name).read_bytes()
        assert copy_bytes == source.read_bytes(), (
            f"charts/sla-operator/crds/{source.name} differs from crds/{source.name}: "
            "edit crds/ only, then run `make crds`"
        )


# ---------------------------------------------------------------- examples


def test_every_kind_has_an_example() -> None:
    assert {doc["kind"] for _, doc in example_manifests()} == KINDS


@pytest.mark.parametrize(("name", "manifest"), example_manifests(), ids=lambda v: str(v)[:60])
def test_the_examples_are_valid_against_the_schemas(name: str, manifest: dict[str, Any]) -> None:
    assert validation_errors(manifest) == [], name


def probe_targets(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from probe_targets(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("url", "host") and isinstance(value, str):
                yield value
            yield from probe_targets(value)


def test_the_examples_only_probe_the_loopback_address() -> None:
    targets = [t for _, doc in example_manifests() for t in probe_targets(doc.get("spec"))]
    assert targets
    for target in targets:
        assert LOOPBACK_TARGET.match(target), target


# ---------------------------------------------------------------- what the schemas reject

MINIMAL = {
    "ServiceLevelAgreement": {
        "service": "Payments API",
        "objective": "99.9",
        "endpoints": [{"name": "api", "http": {"url": "http://127.0.0.1:8099/healthz"}}],
    },
    "MaintenanceWindow": {"start": "2026-12-01T02:00:00Z", "end": "2026-12-01T04:00:00Z"},
    "Incident": {
        "agreement": "payments-api",
        "severity": "P2",
        "title": "Payments API is down",
        "startedAt": "2026-11-26T04:12:03Z",
    },
    "NotificationRoute": {"url": "http://127.0.0.1:9095/hook"},
    "SupportRequest": {"agreement": "payments-api", "severity": "P2", "title": "Webhooks delayed"},
}


def minimal_manifest(kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "sample"},
        "spec": copy.deepcopy(MINIMAL[kind]),
    }


def set_field(path: str, value: Any) -> Mutation:
    """A mutation setting a dotted path under spec; numeric parts index lists."""

    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[last] = value

    return mutate


def drop_field(path: str) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


def with_manifest(kind: str, *mutations: Mutation) -> dict[str, Any]:
    manifest = minimal_manifest(kind)
    for mutate in mutations:
        mutate(manifest["spec"])
    return manifest


SLA, MW, INC = "ServiceLevelAgreement", "MaintenanceWindow", "Incident"
SREQ = "SupportRequest"

# (case, kind, mutations, field path the error names)
REJECTED: list[tuple[str, str, list[Mutation], str]] = [
    ("objective abc", SLA, [set_field("objective", "abc")], "spec.objective"),
    ("objective 100", SLA, [set_field("objective", "100")], "spec.objective"),
    ("objective 0", SLA, [set_field("objective", "0")], "spec.objective"),
    ("objective -1", SLA, [set_field("objective", "-1")], "spec.objective"),
    ("objective as a number", SLA, [set_field("objective", 99.9)], "spec.objective"),
    (
        "endpoint with http and tcp",
        SLA,
        [set_field("endpoints.0.tcp", {"host": "127.0.0.1", "port": 5432})],
        "spec.endpoints.0",
    ),
    ("endpoint with no probe", SLA, [drop_field("endpoints.0.http")], "spec.endpoints.0"),
    ("negative interval", SLA, [set_field("endpoints.0.interval", "-5s")], "spec.endpoints.0.interval"),
    ("interval without unit", SLA, [set_field("endpoints.0.interval", "30")], "spec.endpoints.0.interval"),
    (
        "failureThreshold 0",
        SLA,
        [set_field("endpoints.0.failureThreshold", 0)],
        "spec.endpoints.0.failureThreshold",
    ),
    ("endpoint name not a DNS label", SLA, [set_field("endpoints.0.name", "Api_1")], "spec.endpoints.0.name"),
    (
        "tcp port 0",
        SLA,
        [drop_field("endpoints.0.http"), set_field("endpoints.0.tcp", {"host": "db", "port": 0})],
        "spec.endpoints.0.tcp.port",
    ),
    ("bad time zone", SLA, [set_field("window.timeZone", "Mars/Olympus Mons")], "spec.window.timeZone"),
    ("unknown environment", SLA, [set_field("environment", "staging")], "spec.environment"),
    ("no endpoints", SLA, [set_field("endpoints", [])], "spec.endpoints"),
    ("MW with start and schedule", MW, [set_field("schedule", "0 2 * * SUN")], "spec"),
    (
        "MW with start and a full recurring schedule",
        MW,
        [set_field("schedule", "0 2 * * SUN"), set_field("duration", "2h")],
        "spec",
    ),
    ("MW with start but no end", MW, [drop_field("end")], "spec"),
    ("MW with neither start nor schedule", MW, [drop_field("start"), drop_field("end")], "spec"),
    ("MW schedule not cron", MW, [set_field("schedule", "every sunday")], "spec.schedule"),
    ("severity P5", INC, [set_field("severity", "P5")], "spec.severity"),
    (
        "unknown exclusion reason",
        INC,
        [set_field("exclusion", {"reason": "weather"})],
        "spec.exclusion.reason",
    ),
    (
        "update with severity P0",
        INC,
        [
            set_field(
                "updates",
                [{"time": "2026-11-26T04:20:00Z", "state": "identified", "message": "x", "severity": "P0"}],
            )
        ],
        "spec.updates.0.severity",
    ),
    ("support hours from 9am", SLA, [set_field("supportHours", {"from": "9am"})],
     "spec.supportHours.from"),
    ("support hours on Monday", SLA, [set_field("supportHours", {"days": ["Monday"]})],
     "spec.supportHours.days.0"),
    ("support hours of an office", SLA, [set_field("supportHours", {"hours": {"P4": "office"}})],
     "spec.supportHours.hours.P4"),
    ("request severity P5", SREQ, [set_field("severity", "P5")], "spec.severity"),
    ("request without a title", SREQ, [drop_field("title")], "spec"),
    ("request without an agreement", SREQ, [drop_field("agreement")], "spec"),
    ("request with an empty title", SREQ, [set_field("title", "")], "spec.title"),
]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_minimal_manifests_are_accepted(kind: str) -> None:
    assert validation_errors(minimal_manifest(kind)) == []


@pytest.mark.parametrize(
    ("kind", "mutations", "field"),
    [case[1:] for case in REJECTED],
    ids=[case[0] for case in REJECTED],
)
def test_bad_manifests_are_rejected_at_the_named_field(
    kind: str, mutations: list[Mutation], field: str
) -> None:
    errors = validation_errors(with_manifest(kind, *mutations))
    assert errors, "the schema accepted it"
    assert any(error.split(":")[0] == field for error in errors), errors


@pytest.mark.parametrize("objective", ["99.9", "99.95", "95", "0.5", "99.999", "1", "50.0"])
def test_objectives_strictly_between_0_and_100_are_accepted(objective: str) -> None:
    assert validation_errors(with_manifest(SLA, set_field("objective", objective))) == []


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "America/Argentina/Buenos_Aires", "Etc/GMT+5"])
def test_iana_time_zones_are_accepted(zone: str) -> None:
    assert validation_errors(with_manifest(SLA, set_field("window.timeZone", zone))) == []


@pytest.mark.parametrize("probe", ["tcp", "dns", "grpc", "tls"])
def test_each_probe_kind_alone_is_accepted(probe: str) -> None:
    specs = {
        "tcp": {"host": "127.0.0.1", "port": 5432},
        "dns": {"name": "localhost", "server": "127.0.0.1:53"},
        "grpc": {"host": "127.0.0.1", "port": 9090},
        "tls": {"host": "127.0.0.1"},
    }
    manifest = with_manifest(
        SLA, drop_field("endpoints.0.http"), set_field(f"endpoints.0.{probe}", specs[probe])
    )
    assert validation_errors(manifest) == []


def test_a_recurring_maintenance_window_is_accepted() -> None:
    manifest = with_manifest(
        MW,
        drop_field("start"),
        drop_field("end"),
        set_field("schedule", "0 2 * * SUN"),
        set_field("duration", "2h"),
        set_field("timeZone", "Europe/London"),
    )
    assert validation_errors(manifest) == []


@pytest.mark.parametrize("schedule", ["0 2 * * SUN", "*/15 0-6 1,15 JAN-MAR MON-FRI", "@weekly"])
def test_cron_schedules_and_macros_are_accepted(schedule: str) -> None:
    manifest = with_manifest(
        MW,
        drop_field("start"),
        drop_field("end"),
        set_field("schedule", schedule),
        set_field("duration", "2h"),
    )
    assert validation_errors(manifest) == []


# ---------------------------------------------------------------- what the operator writes


def pruned_keys(value: Any, schema: Schema, path: str) -> list[str]:
    """Keys the API server would silently drop from ``value``: those its schema lacks."""
    if isinstance(value, list):
        item_schema = schema.get("items", {})
        return [k for i, item in enumerate(value) for k in pruned_keys(item, item_schema, f"{path}[{i}]")]
    if not isinstance(value, dict) or "additionalProperties" in schema:
        return []
    properties = schema.get("properties", {})
    found = [f"{path}.{key}" for key in value if key not in properties]
    for key, child in value.items():
        if key in properties:
            found += pruned_keys(child, properties[key], f"{path}.{key}")
    return found


def statuses_the_engine_writes() -> dict[str, dict[str, Any]]:
    """One evaluation of the examples, with one endpoint probed and one not probed yet."""
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    docs = {doc["metadata"]["name"]: doc for _, doc in example_manifests()}
    sla = copy.deepcopy(docs["payments-api"])
    sla["metadata"].update(namespace="payments", creationTimestamp="2026-10-15T00:00:00Z")
    agreement = agreement_from_manifest(sla)
    runtime = AgreementRuntime(agreement, started=now - timedelta(hours=1))
    runtime.observe(agreement.endpoints[0], ProbeResult(now - timedelta(seconds=20), True, 0.041, "200 OK"))
    windows = [maintenance_from_manifest(docs[n]) for n in ("db-upgrade", "weekly-patching")]
    incident = incident_from_manifest(docs["card-network-outage-20261120"])
    request = support_request_from_manifest({**docs["acme-1042"], "spec": {
        **docs["acme-1042"]["spec"], "respondedAt": "2026-11-26T09:40:00Z"}})
    evaluation = evaluate_agreement(runtime, [incident], windows, now, requests=[request])
    assert "support" in evaluation.status["currentPeriod"]
    route = route_from_manifest(docs["payments-on-call"])
    delivered = {"time": now, "event": "incidentOpened", "deliveryId": "0" * 32, "attempts": 2}
    failed = {"time": now, "event": "incidentOpened", "deliveryId": "0" * 32,
              "message": "127.0.0.1 answered 503"}
    sender = SimpleNamespace(route=route, state=RouteState(
        delivered=3, failed=1, last_delivery=delivered, last_failure=failed,
        problem="secret on-call-token is not labelled sla.dev/notification-credential=true",
        pending_counts={"incident/down-1": 2}))
    return {
        "ServiceLevelAgreement": evaluation.status,
        "MaintenanceWindow": maintenance_status(windows[1], None, now),
        "Incident": evaluation.incident_status[incident.key],
        "NotificationRoute": route_status(sender, now),  # type: ignore[arg-type]
        "SupportRequest": evaluation.support_status[request.key],
    }


STATUSES = statuses_the_engine_writes()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_status_the_engine_writes_is_valid_and_nothing_in_it_is_pruned(kind: str) -> None:
    status_schema = openapi_schema(kind)["properties"]["status"]
    assert pruned_keys(STATUSES[kind], status_schema, "status") == []
    assert validation_errors({**minimal_manifest(kind), "status": STATUSES[kind]}) == []


@pytest.mark.parametrize(("name", "manifest"), example_manifests(), ids=lambda v: str(v)[:60])
def test_the_examples_parse_into_domain_objects(name: str, manifest: dict[str, Any]) -> None:
    parse = {
        "ServiceLevelAgreement": agreement_from_manifest,
        "MaintenanceWindow": maintenance_from_manifest,
        "Incident": incident_from_manifest,
        "NotificationRoute": route_from_manifest,
        "SupportRequest": support_request_from_manifest,
    }[manifest["kind"]]
    assert parse(manifest).name == manifest["metadata"]["name"], name
