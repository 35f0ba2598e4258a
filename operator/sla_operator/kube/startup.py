"""The operator's start: cluster, engine and metrics first, then kopf with its settings.

Everything that can fail for a reason a person must fix (credentials, CRDs, permissions, a
port in use) is done before kopf runs: kopf retries a failing startup handler forever.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import kopf
from kubernetes import client
from prometheus_client import CollectorRegistry

from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.schedule import validate_maintenance
from sla_operator.engine import Engine
from sla_operator.kube.connect import StartupError, api_client, first_lists
from sla_operator.kube.rules import RuleKeeper
from sla_operator.metrics import EngineCollector, metrics_app, serve
from sla_operator.settings import Settings
from sla_operator.store.kube import KubeStore

log = logging.getLogger("sla_operator.kube")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = "sla.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="sla.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="sla.dev", key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 4


def preload(engine: Engine, listed: dict[str, list[dict[str, Any]]]) -> None:
    """Hand every listed Incident and MaintenanceWindow to the engine before any decision,
    so none is opened twice; one that cannot be read is logged and skipped."""
    for plural, load in (("incidents", _load_incident), ("maintenancewindows", _load_window)):
        for item in listed.get(plural, []):
            try:
                load(engine, item)
            except Exception as error:  # one bad object must not keep the operator from starting
                meta = item.get("metadata") if isinstance(item, dict) else None
                meta = meta if isinstance(meta, dict) else {}
                log.warning("%s %s/%s ignored: %s", plural, meta.get("namespace"),
                            meta.get("name"), error)


def _load_incident(engine: Engine, item: dict[str, Any]) -> None:
    engine.upsert_incident(incident_from_manifest(item))


def _load_window(engine: Engine, item: dict[str, Any]) -> None:
    window = maintenance_from_manifest(item)
    validate_maintenance(window)
    engine.upsert_maintenance(window)


def run(options: Settings) -> int:
    """Run the operator until interrupted (``sla-operator run``); 1 when it cannot start."""
    from sla_operator.kube import handlers  # registers the resource handlers

    assert handlers
    if logging.getLogger().level > logging.DEBUG:
        # kopf logs every handled watch event at INFO; incidents alone would flood the log.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if options.status_port:
        log.info("status page: not available in this version (--status-port %d unused)",
                 options.status_port)
    try:
        api = api_client()
        listed = first_lists(api, options.namespaces)
        asyncio.run(_operate(options, api, listed))
    except StartupError as error:
        print(f"sla-operator run: {error}", file=sys.stderr)
        return 1
    return 0


async def _operate(options: Settings, api: client.ApiClient,
                   listed: dict[str, list[dict[str, Any]]]) -> None:
    engine = Engine(KubeStore(api), options.engine_settings())
    preload(engine, listed)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine))
    try:
        runner = await serve(metrics_app(engine, registry), options.bind_address,
                             options.metrics_port)
    except OSError as error:
        raise StartupError(f"cannot listen on {options.bind_address}:{options.metrics_port} "
                           f"for metrics: {error.strerror or error}") from None
    engine_task = asyncio.create_task(engine.run(), name="sla-engine")
    try:
        await kopf.operator(
            clusterwide=not options.namespaces,
            namespaces=list(options.namespaces),
            memo=kopf.Memo(settings=options, engine=engine, api=api,
                           rule_keeper=RuleKeeper(client.CustomObjectsApi(api),
                                                  dict(options.rule_labels))),
            standalone=True,
        )
    finally:
        engine_task.cancel()
        await asyncio.gather(engine_task, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
