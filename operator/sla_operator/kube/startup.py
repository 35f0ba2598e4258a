"""Everything kopf needs configured, in one startup handler, plus the engine's life cycle."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import urllib3
from kubernetes import client, config
from prometheus_client import CollectorRegistry

from sla_operator.domain.errors import SpecError
from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.schedule import validate_maintenance
from sla_operator.engine import Engine
from sla_operator.metrics import EngineCollector, metrics_app, serve
from sla_operator.settings import Settings
from sla_operator.store.kube import GROUP, VERSION, KubeStore

log = logging.getLogger("sla_operator.kube")


def api_client() -> client.ApiClient:
    """In-cluster credentials when running in a Pod, else KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.ApiClient()
    if not api.configuration.verify_ssl:
        # Said once here rather than by urllib3 on every request.
        log.warning("the kubeconfig skips TLS verification of the API server")
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return api


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = "sla.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="sla.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="sla.dev", key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 4

    options: Settings = memo["settings"]
    store = KubeStore(api_client())
    engine = Engine(store, options.engine_settings())
    await _preload(engine, store, options.namespaces)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    memo["engine"] = engine
    memo["engine_task"] = asyncio.create_task(engine.run(), name="sla-engine")
    memo["metrics_runner"] = await serve(metrics_app(engine, registry), options.bind_address,
                                         options.metrics_port)


async def _preload(engine: Engine, store: KubeStore, namespaces: tuple[str, ...]) -> None:
    """Read every Incident and MaintenanceWindow before any decision, so none is opened twice."""
    for plural, load in (("incidents", _load_incident), ("maintenancewindows", _load_window)):
        if namespaces:
            items = []
            for namespace in namespaces:
                listed = await asyncio.to_thread(store.custom.list_namespaced_custom_object,
                                                 GROUP, VERSION, namespace, plural)
                items += listed.get("items", [])
        else:
            listed = await asyncio.to_thread(store.custom.list_cluster_custom_object,
                                             GROUP, VERSION, plural)
            items = listed.get("items", [])
        for item in items:
            try:
                load(engine, item)
            except SpecError as error:
                meta = item.get("metadata", {})
                log.warning("%s %s/%s ignored: %s", plural, meta.get("namespace"), meta.get("name"),
                            error)


def _load_incident(engine: Engine, item: dict[str, Any]) -> None:
    engine.upsert_incident(incident_from_manifest(item))


def _load_window(engine: Engine, item: dict[str, Any]) -> None:
    window = maintenance_from_manifest(item)
    validate_maintenance(window)
    engine.upsert_maintenance(window)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("engine_task")
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    runner = memo.get("metrics_runner")
    if runner is not None:
        await runner.cleanup()


def run(options: Settings) -> None:
    """Run the operator until interrupted (``sla-operator run``)."""
    from sla_operator.kube import handlers  # registers the resource handlers

    assert handlers
    if logging.getLogger().level > logging.DEBUG:
        # kopf logs every handled watch event at INFO; incidents alone would flood the log.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    memo = kopf.Memo(settings=options)
    asyncio.run(kopf.operator(
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        memo=memo,
        standalone=True,
    ))
