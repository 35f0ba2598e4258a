"""Local mode: the operator's engine on a folder of manifests, with its state kept in files.

``sla-operator local --manifests DIR --state DIR`` runs the same engine as the cluster mode; only
the Store differs (:class:`sla_operator.local.store.LocalStore` instead of the Kubernetes API).

Manifests folder (read, never written): YAML files of ServiceLevelAgreement, MaintenanceWindow,
Incident, SupportRequest (sla.dev/v1alpha1) and Secret (v1) documents, checked against the CRD
schemas and the domain parser. Edits are picked up within about a second.

State folder (written atomically: temporary file, fsync, rename; people may edit it)::

    agreements.yaml                                 first-seen time and uid of every agreement (and
                                                    of every support request: its default openedAt)
    incidents/<namespace>/<name>.yaml               full Incident manifests: apiVersion, kind,
                                                    metadata (label sla.dev/agreement), spec, status
    status/servicelevelagreements/<ns>/<name>.yaml  status of each agreement
    status/maintenancewindows/<ns>/<name>.yaml      status of each maintenance window
    status/incidents/<ns>/<name>.yaml               status of incidents filed in the manifests folder
    status/supportrequests/<ns>/<name>.yaml         status of each support request (responseDue, ...)

Editing an incident file (``acknowledgedAt``, ``exclusion``, an appended update) takes effect
while running; the engine re-reads a file before it changes it, so such edits are never lost.
A restart reads the incidents and statuses back before probing again: nothing is opened twice,
and the time the process was not running counts as unmonitored.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from sla_operator.engine import Engine
from sla_operator.local.files import remove_stale_temporaries, sync_deferred
from sla_operator.local.manifests import manifests_folder_problem
from sla_operator.local.notify_routes import LocalRoutes
from sla_operator.local.store import LocalStore
from sla_operator.local.sync import LocalSync
from sla_operator.metrics import EngineCollector, metrics_app, serve
from sla_operator.notify.notifier import engine_notifier
from sla_operator.settings import Settings
from sla_operator.statuspage import status_app

log = logging.getLogger("sla_operator.local")


def run_local(settings: Settings, manifests_dir: str, state_dir: str) -> int:
    """Run until SIGINT or SIGTERM; 0 after a clean stop, 2 when the folders are unusable."""
    manifests, state = Path(manifests_dir), Path(state_dir)
    problem = _folder_problem(manifests, state)
    if problem is not None:
        print(f"sla-operator local: {problem}", file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, manifests, state))


def _folder_problem(manifests: Path, state: Path) -> str | None:
    problem = manifests_folder_problem(manifests)
    if problem is not None:
        return problem
    if state.exists() and not state.is_dir():
        return f"--state {state}: exists and is not a folder"
    if state.resolve().is_relative_to(manifests.resolve()) and not any(
            part.startswith(".") for part in state.resolve().relative_to(manifests.resolve()).parts):
        return (f"--state {state} is inside --manifests {manifests}: the state files would be "
                "read as manifests; use a folder outside it (or a hidden one, e.g. .state)")
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"--state {state}: cannot create the folder: {error.strerror or error}"
    return None


async def _run(settings: Settings, manifests: Path, state: Path) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    state.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(state):
        log.info("removed %s, left by a write that was interrupted", stale)

    store = LocalStore(state)
    engine = Engine(store, settings.engine_settings())
    sync = LocalSync(engine, store, manifests)
    await sync.rescan()  # incidents and windows are in place before the first evaluation
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine, endpoint_histograms=settings.endpoint_histograms))
    runner = status = None
    try:
        runner = await _listen(metrics_app(engine, registry), settings, "--metrics-port",
                               settings.metrics_port)
        status = await _listen(status_app(lambda: engine.snapshot), settings, "--status-port",
                               settings.status_port)
    except ListenError as error:
        if runner is not None:
            await runner.cleanup()
        print(f"sla-operator local: {error}", file=sys.stderr)
        return 1
    if runner is not None:
        log.info("metrics on %s", _where(settings.bind_address, settings.metrics_port,
                                          "/metrics"))
    if status is not None:
        log.info("status page on %s", _where(settings.bind_address, settings.status_port, "/"))
    log.info("watching %s; state in %s", manifests, state)
    notifier = engine_notifier(engine, LocalRoutes(sync, state))  # routes from the folder
    tasks = [asyncio.create_task(engine.run(), name="sla-engine"),
             asyncio.create_task(sync.watch(), name="sla-local-watch"),
             asyncio.create_task(notifier.run(), name="sla-notify")]
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (stopper, *tasks):
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for listener in (runner, status):
            if listener is not None:
                await listener.cleanup()
        try:  # the last statuses' exchanges, on the disk before the process ends
            await asyncio.to_thread(sync_deferred)
        except OSError as error:
            log.warning("syncing the state folder: %s", error)
    failures = [r for r in results if isinstance(r, BaseException)
                and not isinstance(r, asyncio.CancelledError)]
    for failure in failures:
        log.error("stopped by an error: %r", failure)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(signum)
    log.info("stopped")
    return 1 if failures else 0


class ListenError(Exception):
    """A listener could not start; the message names the flag to change."""


async def _listen(app: web.Application, settings: Settings, flag: str,
                  port: int) -> web.AppRunner | None:
    try:
        return await serve(app, settings.bind_address, port)
    except OSError as error:
        raise ListenError(
            f"{flag} {port}: cannot listen on {settings.bind_address}:{port}: "
            f"{error.strerror or error} (another process may hold the port: choose another "
            f"with {flag}, or 0 to turn it off)") from None


def _where(bind_address: str, port: int, path: str) -> str:
    """Where a listener is, as it is: a URL to open, and which interfaces it listens on."""
    if bind_address in ("0.0.0.0", "::", ""):
        return f"http://127.0.0.1:{port}{path} (listening on all interfaces, {bind_address or '*'})"
    host = f"[{bind_address}]" if ":" in bind_address else bind_address
    return f"http://{host}:{port}{path}"
