"""The CRDs as a real API server enforces them: examples accepted, bad manifests rejected.

Everything here goes through kubectl against the cluster under test, so the messages
asserted are the ones a user sees. Bad manifests are sent with ``--validate=false`` so that
the API server itself, not kubectl, is what rejects them.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CRD_FILES = sorted((ROOT / "crds").glob("*.yaml"))
EXAMPLE_FILES = sorted((ROOT / "examples").glob("*.yaml"))
CRD_NAMES = [
    "servicelevelagreements.sla.dev",
    "maintenancewindows.sla.dev",
    "incidents.sla.dev",
]

Kubectl = Callable[..., Any]


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    """The three CRDs, applied and Established (left in place: other modules share them)."""
    for path in CRD_FILES:
        kubectl("apply", "-f", str(path))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in CRD_NAMES))


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl, crds: None) -> Iterator[str]:
    name = f"sla-crd-e2e-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def create(kubectl: Kubectl, namespace: str, manifest: dict[str, Any], check: bool = True) -> Any:
    return kubectl(
        "create",
        "--validate=false",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(manifest),
        check=check,
    )


def get_json(kubectl: Kubectl, namespace: str, resource: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl("get", "-n", namespace, resource, "-o", "json").stdout)
    return result


def manifest(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "sla.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": copy.deepcopy(spec),
    }


MINIMAL_SLA = {
    "service": "Checkout",
    "objective": "99.9",
    "endpoints": [{"name": "api", "http": {"url": "http://127.0.0.1:8099/healthz"}}],
}
MINIMAL_MW = {"start": "2026-12-01T02:00:00Z", "end": "2026-12-01T04:00:00Z"}
MINIMAL_INCIDENT = {
    "agreement": "checkout",
    "severity": "P2",
    "title": "Checkout is down",
    "startedAt": "2026-11-26T04:12:03Z",
}


def patched(spec: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``spec`` with top-level fields or ``endpoint0`` replaced; None deletes."""
    changed = copy.deepcopy(spec)
    endpoint_changes = changes.pop("endpoint0", None)
    for key, value in changes.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    if endpoint_changes is not None:
        changed["endpoints"] = [endpoint_changes]
    return changed


HTTP = {"url": "http://127.0.0.1:8099/healthz"}

# (case, kind, spec, text the API server's message must contain)
REJECTED: list[tuple[str, str, dict[str, Any], str]] = [
    ("objective-abc", "ServiceLevelAgreement", patched(MINIMAL_SLA, objective="abc"), "spec.objective"),
    ("objective-100", "ServiceLevelAgreement", patched(MINIMAL_SLA, objective="100"), "spec.objective"),
    (
        "http-and-tcp",
        "ServiceLevelAgreement",
        patched(
            MINIMAL_SLA, endpoint0={"name": "api", "http": HTTP, "tcp": {"host": "127.0.0.1", "port": 1}}
        ),
        '"spec.endpoints" must validate one and only one schema (oneOf)',
    ),
    (
        "no-probe",
        "ServiceLevelAgreement",
        patched(MINIMAL_SLA, endpoint0={"name": "api"}),
        '"spec.endpoints" must validate one and only one schema (oneOf)',
    ),
    (
        "negative-interval",
        "ServiceLevelAgreement",
        patched(MINIMAL_SLA, endpoint0={"name": "api", "http": HTTP, "interval": "-5s"}),
        "spec.endpoints.interval",
    ),
    (
        "failure-threshold-0",
        "ServiceLevelAgreement",
        patched(MINIMAL_SLA, endpoint0={"name": "api", "http": HTTP, "failureThreshold": 0}),
        "spec.endpoints.failureThreshold",
    ),
    (
        "bad-time-zone",
        "ServiceLevelAgreement",
        patched(MINIMAL_SLA, window={"timeZone": "Mars/Olympus Mons"}),
        "spec.window.timeZone",
    ),
    (
        "duplicate-endpoint-names",
        "ServiceLevelAgreement",
        patched(MINIMAL_SLA, endpoints=[{"name": "api", "http": HTTP}, {"name": "api", "http": HTTP}]),
        "spec.endpoints[1]: Duplicate value",
    ),
    ("mw-start-and-schedule", "MaintenanceWindow", patched(MINIMAL_MW, schedule="0 2 * * SUN"), "spec"),
    ("severity-p5", "Incident", patched(MINIMAL_INCIDENT, severity="P5"), "spec.severity"),
]


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_is_accepted(kubectl: Kubectl, namespace: str, example: Path) -> None:
    result = kubectl("apply", "-n", namespace, "-f", str(example))
    assert "created" in result.stdout or "configured" in result.stdout or "unchanged" in result.stdout


@pytest.mark.parametrize(("case", "kind", "spec", "field"), REJECTED, ids=[c[0] for c in REJECTED])
def test_bad_manifests_are_rejected_by_the_api_server_naming_the_field(
    kubectl: Kubectl, namespace: str, case: str, kind: str, spec: dict[str, Any], field: str
) -> None:
    result = create(kubectl, namespace, manifest(kind, f"bad-{case}", spec), check=False)
    assert result.returncode != 0, f"{case} was accepted"
    assert "is invalid" in result.stderr, result.stderr
    assert field in result.stderr, result.stderr


def test_the_sla_dev_category_lists_all_three_kinds(kubectl: Kubectl, namespace: str) -> None:
    create(kubectl, namespace, manifest("ServiceLevelAgreement", "category-sla", MINIMAL_SLA))
    create(kubectl, namespace, manifest("MaintenanceWindow", "category-mw", MINIMAL_MW))
    create(kubectl, namespace, manifest("Incident", "category-inc", MINIMAL_INCIDENT))
    names = kubectl("get", "sla-dev", "-n", namespace, "-o", "name").stdout.split()
    assert "servicelevelagreement.sla.dev/category-sla" in names
    assert "maintenancewindow.sla.dev/category-mw" in names
    assert "incident.sla.dev/category-inc" in names


def test_kubectl_explain_prints_the_field_descriptions(kubectl: Kubectl, crds: None) -> None:
    text = kubectl("explain", "servicelevelagreement.spec.endpoints.http").stdout
    assert "Probe with an HTTP(S) request." in text
    assert "Absolute http:// or https:// URL to request." in text
    assert "Follow 3xx redirects" in text


def test_defaults_are_filled_in_by_the_api_server(kubectl: Kubectl, namespace: str) -> None:
    create(kubectl, namespace, manifest("ServiceLevelAgreement", "defaults", MINIMAL_SLA))
    spec = get_json(kubectl, namespace, "sla/defaults")["spec"]
    endpoint = spec["endpoints"][0]
    assert (endpoint["interval"], endpoint["timeout"]) == ("30s", "5s")
    assert (endpoint["failureThreshold"], endpoint["successThreshold"]) == (3, 2)
    assert endpoint["dependency"] is False
    assert endpoint["http"] == {
        "url": "http://127.0.0.1:8099/healthz",
        "method": "GET",
        "followRedirects": True,
        "insecureSkipVerify": False,
    }
    assert spec["window"] == {"type": "calendar", "period": "month", "timeZone": "UTC"}
    assert spec["supportResponse"] == {"P1": "15m", "P2": "1h", "P3": "8h", "P4": "24h"}
    assert (spec["environment"], spec["downtimeWhen"]) == ("production", "any")
    assert spec["alerting"] == {"enabled": True}
    assert spec["statusPage"] == {"public": False}


def test_incident_and_window_defaults_are_filled_in(kubectl: Kubectl, namespace: str) -> None:
    create(kubectl, namespace, manifest("Incident", "defaults-inc", MINIMAL_INCIDENT))
    create(kubectl, namespace, manifest("MaintenanceWindow", "defaults-mw", MINIMAL_MW))
    incident = get_json(kubectl, namespace, "inc/defaults-inc")["spec"]
    assert (incident["origin"], incident["type"], incident["state"]) == ("manual", "outage", "investigating")
    assert (incident["impact"], incident["dependency"]) == ("downtime", False)
    window = get_json(kubectl, namespace, "mw/defaults-mw")["spec"]
    assert (window["announce"], window["timeZone"]) == ("168h", "UTC")


SLA_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "state": "Up",
    "message": "all endpoints answer",
    "lastEvaluated": "2026-11-26T04:30:00Z",
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Evaluated",
            "message": "probing 1 endpoint",
            "lastTransitionTime": "2026-11-26T04:00:00Z",
            "observedGeneration": 1,
        }
    ],
    "currentPeriod": {
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-12-01T00:00:00Z",
        "label": "2026-11",
        "availability": "99.9731",
        "objective": "99.9",
        "elapsedSeconds": 2217600,
        "eligibleSeconds": 2210280,
        "downtimeSeconds": 697,
        "maintenanceSeconds": 7200,
        "excludedSeconds": 120,
        "unmonitoredSeconds": 0,
        "incidents": 2,
        "errorBudget": {
            "totalSeconds": 2585,
            "remainingSeconds": -12,
            "remainingRatio": "-0.0046",
            "remainingPercent": "-0.46",
        },
    },
    "endpoints": [
        {
            "name": "api",
            "state": "Up",
            "dependency": False,
            "lastProbeTime": "2026-11-26T04:29:30Z",
            "latencyMs": 41,
            "consecutiveFailures": 0,
            "consecutiveSuccesses": 12,
            "message": "200 OK",
            "certificateNotAfter": None,
        }
    ],
    "openIncidents": ["checkout-20261126-0412"],
    "history": [
        {
            "period": "2026-10",
            "start": "2026-10-01T00:00:00Z",
            "end": "2026-11-01T00:00:00Z",
            "availability": "99.9912",
            "objective": "99.9",
            "met": True,
            "downtimeSeconds": 236,
            "maintenanceSeconds": 3600,
            "excludedSeconds": 0,
            "unmonitoredSeconds": 0,
            "incidents": 2,
        }
    ],
    "daily": [
        {
            "date": "2026-11-25",
            "availability": "100.0000",
            "downtimeSeconds": 0,
            "maintenanceSeconds": 0,
            "excludedSeconds": 0,
            "unmonitoredSeconds": 0,
        }
    ],
    "unmonitored": [{"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}],
}
MW_STATUS = {
    "observedGeneration": 1,
    "active": False,
    "currentStart": None,
    "currentEnd": None,
    "nextStart": "2026-12-01T02:00:00Z",
    "nextEnd": "2026-12-01T04:00:00Z",
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Scheduled", "message": "next at 2026-12-01T02:00:00Z"}
    ],
}
INCIDENT_STATUS = {
    "observedGeneration": 1,
    "durationSeconds": 412,
    "countedDowntimeSeconds": 400,
    "duration": "6m52s",
    "responseDue": "2026-11-26T04:27:03Z",
    "responseBreached": False,
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Recorded", "message": "counted 400s of downtime"}
    ],
}


def write_status(kubectl: Kubectl, namespace: str, resource: str, status: dict[str, Any]) -> dict[str, Any]:
    # A JSON patch keeps nulls (a merge patch would read them as deletions).
    replace_status = [{"op": "add", "path": "/status", "value": status}]
    kubectl(
        "patch",
        "-n",
        namespace,
        resource,
        "--subresource=status",
        "--type=json",
        "-p",
        json.dumps(replace_status),
    )
    stored: dict[str, Any] = get_json(kubectl, namespace, resource)["status"]
    return stored


@pytest.mark.parametrize(
    ("kind", "short", "spec", "status"),
    [
        ("ServiceLevelAgreement", "sla", MINIMAL_SLA, SLA_STATUS),
        ("MaintenanceWindow", "mw", MINIMAL_MW, MW_STATUS),
        ("Incident", "inc", MINIMAL_INCIDENT, INCIDENT_STATUS),
    ],
)
def test_every_status_field_the_operator_writes_survives_pruning(
    kubectl: Kubectl, namespace: str, kind: str, short: str, spec: dict[str, Any], status: dict[str, Any]
) -> None:
    create(kubectl, namespace, manifest(kind, f"status-{short}", spec))
    assert write_status(kubectl, namespace, f"{short}/status-{short}", status) == status


@pytest.mark.parametrize(
    ("short", "headers", "values"),
    [
        (
            "sla",
            ["SERVICE", "OBJECTIVE", "AVAILABILITY", "BUDGET", "STATE", "AGE"],
            ["Checkout", "99.9", "99.9731", "-0.46", "Up"],
        ),
        ("mw", ["DESCRIPTION", "SCHEDULE", "ACTIVE", "NEXT", "AGE"], ["false", "2026-12-01T02:00:00Z"]),
        (
            "inc",
            ["AGREEMENT", "SEVERITY", "STATE", "TYPE", "STARTED", "DURATION"],
            ["checkout", "P2", "investigating", "outage", "6m52s"],
        ),
    ],
)
def test_printer_columns_show_spec_and_status(
    kubectl: Kubectl, namespace: str, short: str, headers: list[str], values: list[str]
) -> None:
    kinds = {
        "sla": ("ServiceLevelAgreement", MINIMAL_SLA, SLA_STATUS),
        "mw": ("MaintenanceWindow", MINIMAL_MW, MW_STATUS),
        "inc": ("Incident", MINIMAL_INCIDENT, INCIDENT_STATUS),
    }
    kind, spec, status = kinds[short]
    create(kubectl, namespace, manifest(kind, f"columns-{short}", spec))
    write_status(kubectl, namespace, f"{short}/columns-{short}", status)
    header, row = kubectl("get", "-n", namespace, f"{short}/columns-{short}").stdout.splitlines()
    assert header.split()[1:] == headers
    for value in values:
        assert value in row.split(), row


def test_fields_that_may_be_null_accept_null(kubectl: Kubectl, namespace: str) -> None:
    open_incident = copy.deepcopy(MINIMAL_INCIDENT)
    open_incident.update(resolvedAt=None, acknowledgedAt=None, acknowledgedBy=None)
    create(kubectl, namespace, manifest("Incident", "nulls-inc", open_incident))
    recurring = {"schedule": "@weekly", "duration": "2h", "validFrom": None, "validUntil": None}
    create(kubectl, namespace, manifest("MaintenanceWindow", "nulls-mw", recurring))
    assert get_json(kubectl, namespace, "inc/nulls-inc")["spec"]["resolvedAt"] is None
    assert get_json(kubectl, namespace, "mw/nulls-mw")["spec"]["validUntil"] is None


def test_empty_strings_are_stored_as_empty_strings(kubectl: Kubectl, namespace: str) -> None:
    # The operator writes empty strings (an exclusion without a note, a probe's empty
    # message). Built with Go 1.19, the local API server's vendored go-openapi/validate took
    # "" for null until scripts/build-control-plane.sh patched it (recipe 3).
    incident = copy.deepcopy(MINIMAL_INCIDENT)
    incident["exclusion"] = {"reason": "other", "note": ""}
    result = create(kubectl, namespace, manifest("Incident", "empty-note", incident), check=False)
    assert result.returncode == 0, result.stderr
    stored = get_json(kubectl, namespace, "inc/empty-note")["spec"]["exclusion"]
    assert stored == {"reason": "other", "note": ""}
