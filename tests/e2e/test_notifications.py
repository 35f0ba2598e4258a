"""Notifications on a real API server: a NotificationRoute applied with kubectl, its URL in a
labelled Secret, a Target's outage, and a POST at the receiver for its opening and resolution;
the route's status says delivered. A route through an unlabelled Secret and one to a denied
address are refused in their status. Nothing of the Secret appears in a status, an Event or
the log."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from support import CRDS, REPO, OperatorProcess, Target, get, namespace_with_crds, wait_for

Kubectl = Callable[..., Any]
SCHEMA = json.loads((REPO / "docs" / "notification.schema.json").read_text())
TOKEN = "s3cret-webhook-token"
DENIED = "127.0.0.2"  # --deny-cidr: the receiver's port there must never be reached


class Receiver:
    """A webhook receiver on 127.0.0.1 recording each POST's headers and JSON body."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.seen.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def events(self) -> list[str]:
        return [body["event"] for _, body in self.seen]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-notify") as name:
        kubectl("wait", "--for=condition=Established", "crd/notificationroutes.sla.dev",
                "--timeout=60s")
        yield name


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    yield server
    server.close()


def manifests(namespace: str, target: Target, receiver: Receiver) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "hook", "namespace": namespace,
                      "labels": {"sla.dev/notification-credential": "true"}},
         "stringData": {"url": f"http://127.0.0.1:{receiver.port}/hooks/{TOKEN}"}},
        {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
         "metadata": {"name": "shop", "namespace": namespace, "labels": {"team": "web"}},
         "spec": {"service": "Shop", "objective": "99.9", "endpoints": [
             {"name": "api", "interval": "1s", "timeout": "900ms", "failureThreshold": 2,
              "successThreshold": 1, "http": {"url": target.url}}]}},
        {"apiVersion": "sla.dev/v1alpha1", "kind": "NotificationRoute",
         "metadata": {"name": "on-call", "namespace": namespace},
         "spec": {"agreementSelector": {"matchLabels": {"team": "web"}},
                  "events": ["incidentOpened", "incidentResolved"],
                  "urlFrom": {"secretKeyRef": {"name": "hook", "key": "url"}}}},
        # The same URL in a Secret without the label, and an address the policy denies.
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "unlabelled", "namespace": namespace},
         "stringData": {"url": f"http://127.0.0.1:{receiver.port}/hooks/{TOKEN}"}},
        {"apiVersion": "sla.dev/v1alpha1", "kind": "NotificationRoute",
         "metadata": {"name": "unlabelled", "namespace": namespace},
         "spec": {"urlFrom": {"secretKeyRef": {"name": "unlabelled", "key": "url"}}}},
        {"apiVersion": "sla.dev/v1alpha1", "kind": "NotificationRoute",
         "metadata": {"name": "denied", "namespace": namespace},
         "spec": {"url": f"http://{DENIED}:{receiver.port}/hook"}},
    ]


def test_an_outage_is_posted_to_the_route_and_its_status_says_delivered(
        kubectl: Kubectl, kubeconfig: str, namespace: str, target: Target, receiver: Receiver,
        tmp_path: Path) -> None:
    assert (CRDS / "notificationroutes.yaml").exists()
    target.set_healthy(True)
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests(namespace, target, receiver)))
    printed = kubectl("get", "nroute", "-n", namespace).stdout
    assert "FORMAT" in printed and "generic" in printed  # printer columns, the default format
    operator = OperatorProcess(kubeconfig, namespace, tmp_path,
                               extra_args=("--deny-cidr", f"{DENIED}/32"))
    operator.start()
    try:
        wait_for("the agreement Up", lambda: (get(kubectl, namespace, "sla/shop") or {})
                 .get("status", {}).get("state") == "Up")
        target.set_healthy(False)
        wait_for("the opening posted", lambda: "incidentOpened" in receiver.events(), timeout=60)
        target.set_healthy(True)
        wait_for("the resolution posted", lambda: "incidentResolved" in receiver.events(),
                 timeout=60)
        assert receiver.events() == ["incidentOpened", "incidentResolved"]
        for headers, body in receiver.seen:
            jsonschema.validate(body, SCHEMA)
            assert headers["X-SLA-Delivery-Id"] == body["deliveryId"]
            assert body["namespace"] == namespace and body["route"] == "on-call"
        status = wait_for("the route's status", lambda: (
            s := get(kubectl, namespace, "nroute/on-call")["status"]).get("delivered") == 2 and s)
        assert status["pending"] == 0 and status["lastDelivery"]["event"] == "incidentResolved"
        assert status["conditions"][0]["status"] == "True"
        refused = wait_for("the unlabelled Secret refused", lambda: (
            s := get(kubectl, namespace, "nroute/unlabelled")["status"])["message"] and s)
        assert refused["message"].startswith("secret unlabelled is not labelled "
                                             "sla.dev/notification-credential=true")
        assert refused["conditions"][0]["status"] == "False" and refused["delivered"] == 0
        denied = wait_for("both deliveries refused", lambda: (
            s := get(kubectl, namespace, "nroute/denied")["status"]).get("failed") == 2 and s)
        assert denied["message"] == (f"destination {DENIED} refused: address {DENIED} denied "
                                     "by policy")
        assert denied["conditions"][0]["reason"] == "DestinationRefused"
        assert denied["delivered"] == 0
        wide = kubectl("get", "nroute", "-n", namespace, "-o", "wide").stdout
        statuses = json.dumps([status, refused, denied])
        assert TOKEN not in statuses and TOKEN not in wide
        events = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
        assert TOKEN not in events
    finally:
        operator.stop()
    assert TOKEN not in operator.log_path.read_text()
