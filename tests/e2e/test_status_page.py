"""The status page of `sla-operator run` on a real API server: public agreements only."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

import jsonschema
import pytest

from support import OperatorProcess, Target, namespace_with_crds, wait_for

Kubectl = Callable[..., Any]
SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "status.schema.json").read_text())


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-status") as name:
        yield name


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    yield server
    server.close()


@pytest.fixture
def operator(kubeconfig: str, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, namespace, tmp_path, status_page=True)
    process.start()
    yield process
    print(process.log())
    process.stop()


def agreement(name: str, service: str, url: str, public: bool) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": name},
            "spec": {"service": service, "objective": "99.9",
                     "statusPage": {"public": public, "group": "Checkout"},
                     "endpoints": [{"name": "api", "interval": "1s", "timeout": "900ms",
                                    "failureThreshold": 2, "successThreshold": 2,
                                    "http": {"url": url}}]}}


def test_a_public_agreement_and_its_incident_are_served_and_a_private_one_is_not(
        kubectl: Kubectl, namespace: str, target: Target, operator: OperatorProcess) -> None:
    wait_for("the status page to answer", lambda: operator.status_page("/healthz"))
    for manifest in (agreement("storefront", "Storefront", target.url, True),
                     agreement("billing-db", "Billing database", target.url, False)):
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))

    def shown() -> dict[str, Any] | None:
        text = operator.status_page("/api/v1/status")
        document = json.loads(text) if text else None
        return document if document and document["state"] == "Up" else None

    wait_for("storefront Up on the page", shown)
    target.set_healthy(False)

    def outage() -> dict[str, Any] | None:
        text = operator.status_page("/api/v1/status")
        document = json.loads(text) if text else None
        return document if document and document["incidents"] else None

    document = wait_for("the outage on the page", outage)
    jsonschema.validate(document, SCHEMA)
    assert [a["name"] for a in document["agreements"]] == ["storefront"]
    [incident] = document["incidents"]
    assert incident["agreement"] == "storefront" and incident["state"] == "investigating"

    def incident_names() -> set[str] | None:
        listed = json.loads(kubectl("get", "incidents", "-n", namespace, "-o", "json").stdout)
        names = {i["metadata"]["name"] for i in listed["items"]}
        # The private agreement's outage is opened in its own evaluation, moments apart.
        return names if any(n.startswith("billing-db") for n in names) else None

    names = wait_for("both outages recorded", incident_names)
    assert incident["name"] in names

    html = operator.status_page("/") or ""
    assert "Storefront is down" in html
    for path in ("/", "/api/v1/status", "/feed.atom", f"/badge/{namespace}/storefront.svg"):
        body = operator.status_page(path) or ""
        assert "billing" not in body.lower() and "127.0.0.1" not in body, path
    with pytest.raises(HTTPError) as missing:
        urlopen(f"http://127.0.0.1:{operator.status_port}/badge/{namespace}/billing-db.svg")
    assert missing.value.code == 404
