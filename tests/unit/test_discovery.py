"""Discovery: annotated Services and Ingresses add http endpoints to an agreement of their
namespace, marked discovered, and take them away again with the annotation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from engine_clock import API, T0, Clock

from sla_operator.domain.discovery import discovered_from, with_discovered
from sla_operator.domain.errors import SpecError
from sla_operator.domain.health import UNPROBED
from sla_operator.domain.model import Agreement, HttpProbe
from sla_operator.domain.render import endpoint_entry
from sla_operator.engine import Engine, EngineSettings
from sla_operator.kube.discovery import Discoveries, take_in
from sla_operator.local.store import LocalStore


def service(annotations: dict[str, str], ports: list[dict[str, Any]] | None = None,
            name: str = "api") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "annotations": annotations},
            "spec": {"ports": [{"name": "web", "port": 8080}] if ports is None else ports}}


def ingress(annotations: dict[str, str], tls: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": [
        {"http": {"paths": [{"path": "/ignored"}]}},  # no host: not probed
        {"host": "shop.example.com", "http": {"paths": [{"path": "/healthz"}]}}]}
    if tls:
        spec["tls"] = [{"hosts": ["shop.example.com"]}]
    return {"metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
            "spec": spec}


def test_an_annotated_service_is_probed_over_its_cluster_name_and_first_port() -> None:
    found = discovered_from("Service", service({"sla.dev/agreement": "checkout"}))
    assert found is not None
    assert (found.namespace, found.agreement, found.endpoint.name) == ("shop", "checkout", "svc-api")
    assert found.endpoint.probe == HttpProbe(url="http://api.shop.svc:8080/")
    assert found.endpoint.discovered and not found.endpoint.dependency


def test_path_and_expected_status_come_from_their_annotations() -> None:
    found = discovered_from("Service", service(
        {"sla.dev/agreement": "checkout", "sla.dev/endpoint-path": "/healthz?deep=1",
         "sla.dev/expect-status": "200, 204"}, ports=[{"name": "https", "port": 8443}]))
    assert found is not None
    assert found.endpoint.probe == HttpProbe(url="https://api.shop.svc:8443/healthz?deep=1",
                                             expected_status=(200, 204))


def test_an_ingress_is_probed_at_its_first_host_and_path() -> None:
    found = discovered_from("Ingress", ingress({"sla.dev/agreement": "checkout"}))
    assert found is not None and found.endpoint.name == "ing-web"
    assert found.endpoint.probe == HttpProbe(url="http://shop.example.com/healthz")
    found = discovered_from("Ingress", ingress({"sla.dev/agreement": "checkout",
                                                "sla.dev/endpoint-path": "/up"}, tls=True))
    assert found is not None and found.endpoint.probe.url == "https://shop.example.com/up"


def test_without_the_annotation_nothing_is_discovered() -> None:
    assert discovered_from("Service", service({"sla.dev/endpoint-path": "/x"})) is None


@pytest.mark.parametrize(("kind", "manifest", "field"), [
    ("Service", service({"sla.dev/agreement": "a"}, ports=[]), "spec.ports"),
    ("Service", service({"sla.dev/agreement": "a", "sla.dev/expect-status": "ok"}),
     "metadata.annotations[sla.dev/expect-status]"),
    ("Service", service({"sla.dev/agreement": "a", "sla.dev/endpoint-path": "healthz"}),
     "metadata.annotations[sla.dev/endpoint-path]"),
    ("Ingress", {"metadata": {"name": "w", "annotations": {"sla.dev/agreement": "a"}},
                 "spec": {"rules": [{"http": {}}]}}, "spec.rules"),
])
def test_an_object_that_cannot_be_probed_as_annotated_says_where(
        kind: str, manifest: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as raised:
        discovered_from(kind, manifest)
    assert raised.value.problems[0].path == field


def test_a_discovered_endpoint_never_replaces_one_of_the_spec() -> None:
    agreement = Agreement("shop", "checkout", "Checkout", Decimal("99.9"), (API,))
    found = discovered_from("Service", service({"sla.dev/agreement": "checkout"}, name="x"))
    assert found is not None
    clash = found.endpoint.__class__(name=API.name, probe=found.endpoint.probe, discovered=True)
    merged = with_discovered(agreement, {"Service/shop/x": found.endpoint, "Service/shop/y": clash})
    assert [e.name for e in merged.endpoints] == [API.name, "svc-x"]


def test_the_status_entry_of_a_discovered_endpoint_says_so() -> None:
    assert endpoint_entry("svc-api", False, UNPROBED, True)["discovered"] is True
    assert "discovered" not in endpoint_entry("api", False, UNPROBED)


def test_the_engine_gets_the_endpoint_with_the_annotation_and_loses_it_without(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sla_operator.kube import discovery

    discoveries = Discoveries()
    monkeypatch.setattr(discovery, "DISCOVERIES", discoveries)
    clock = Clock()
    engine = Engine(LocalStore(tmp_path, clock=clock), EngineSettings(), clock=clock)
    agreement = Agreement("shop", "checkout", "Checkout", Decimal("99.9"), (API,),
                          created_at=T0)
    engine.upsert_agreement(discoveries.agreement(agreement))
    annotated = service({"sla.dev/agreement": "checkout"})
    take_in(engine, "Service", {"type": "ADDED", "object": annotated})
    names = [e.name for e in engine.agreements[("shop", "checkout")].agreement.endpoints]
    assert names == [API.name, "svc-api"]
    take_in(engine, "Service", {"type": "MODIFIED", "object": service({})})
    names = [e.name for e in engine.agreements[("shop", "checkout")].agreement.endpoints]
    assert names == [API.name]
    take_in(engine, "Service", {"type": "ADDED", "object": annotated})
    take_in(engine, "Service", {"type": "DELETED", "object": annotated})
    assert len(engine.agreements[("shop", "checkout")].agreement.endpoints) == 1


def test_an_agreement_that_arrives_later_gets_what_was_discovered_before() -> None:
    discoveries = Discoveries()
    found = discovered_from("Service", service({"sla.dev/agreement": "checkout"}))
    assert discoveries.update("Service/shop/api", found) == {("shop", "checkout")}
    agreement = Agreement("shop", "checkout", "Checkout", Decimal("99.9"), (API,))
    assert [e.name for e in discoveries.agreement(agreement).endpoints] == [API.name, "svc-api"]
    # The annotation moves to another agreement: both change.
    moved = discovered_from("Service", service({"sla.dev/agreement": "search"}))
    assert discoveries.update("Service/shop/api", moved) == {("shop", "checkout"),
                                                              ("shop", "search")}
    assert [e.name for e in discoveries.agreement(agreement).endpoints] == [API.name]


async def test_a_discovered_endpoint_obeys_the_address_policy() -> None:
    import ipaddress

    from sla_operator.domain.failure_reasons import FailureReason
    from sla_operator.probes.base import ProbeContext
    from sla_operator.probes.policy import AddressPolicy
    from sla_operator.probes.run import run_probe

    async def no_secrets(name: str, key: str) -> str:
        raise AssertionError("no Secret is read")

    manifest = ingress({"sla.dev/agreement": "checkout"})
    manifest["spec"]["rules"][1]["host"] = "localhost"  # resolves without a name server
    found = discovered_from("Ingress", manifest)
    assert found is not None
    context = ProbeContext(policy=AddressPolicy(deny=(ipaddress.ip_network("127.0.0.0/8"),
                                                      ipaddress.ip_network("::1/128"))),
                           resolve_secret=no_secrets)
    try:
        result = await run_probe(found.endpoint, context)
    finally:
        await context.aclose()
    assert (result.ok, result.reason) == (False, FailureReason.POLICY), result.message


async def test_a_replica_that_takes_over_keeps_what_was_discovered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The promoted standby re-reads every agreement: with the endpoints its own watches of
    Services and Ingresses found, not only what the spec says."""
    from sla_operator.kube import startup
    from sla_operator.store.base import Kind

    discoveries = Discoveries()
    monkeypatch.setattr(startup, "DISCOVERIES", discoveries)
    discoveries.update("Service/shop/api", discovered_from(
        "Service", service({"sla.dev/agreement": "checkout"})))
    manifest = {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
                "metadata": {"namespace": "shop", "name": "checkout", "uid": "u1"},
                "spec": {"service": "Checkout", "objective": "99.9", "endpoints": [
                    {"name": "api", "http": {"url": "http://127.0.0.1:9/"}}]}}

    class Lists:
        async def list(self, kind: Kind) -> list[dict[str, Any]]:
            return [manifest] if kind is Kind.AGREEMENT else []

    engine = Engine(LocalStore(tmp_path), EngineSettings(), clock=Clock())
    await startup.take_over(engine, Lists())  # type: ignore[arg-type]
    names = [e.name for e in engine.agreements[("shop", "checkout")].agreement.endpoints]
    assert names == ["api", "svc-api"]
