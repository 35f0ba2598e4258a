"""The Kubernetes store and the engine against kmock: a Kubernetes API emulator on 127.0.0.1.

The real client (``kubernetes.client.ApiClient``) talks real HTTP to it, so these tests see
the exact requests the operator sends: paths, content types and bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta

import kmock as km
import pytest
from kube_support import AGREEMENTS, Clock, ScriptedProbes, World, agreement_manifest
from kubernetes import client

from sla_operator.domain.model import Endpoint, ProbeResult
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.engine import Engine, EngineSettings
from sla_operator.probes.scheduler import ProbeScheduler
from sla_operator.store.kube import KubeStore


@pytest.fixture
def apiserver(kmock: km.KubernetesEmulator) -> km.KubernetesEmulator:
    """kmock, answering creations with 201 Created as a real API server does.

    The client's generated code only reads a create's body for 201; kmock's own answer is 200.
    The reaction sits just above kmock's fallbacks, so a test's own reactions still win.
    """
    (kmock.fallback ** 1)[km.action.CREATE] << 201 << (lambda request: request.data)
    return kmock


@pytest.fixture
def api_client(apiserver: km.KubernetesEmulator) -> Iterator[client.ApiClient]:
    configuration = client.Configuration(host=str(apiserver.url).rstrip("/"))
    api = client.ApiClient(configuration)
    yield api
    api.close()


@pytest.fixture
def store(api_client: client.ApiClient) -> KubeStore:
    return KubeStore(api_client)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def scripted(clock: Clock) -> AsyncIterator[ScriptedProbes]:
    yield ScriptedProbes(clock)


@pytest.fixture
async def world(apiserver: km.KubernetesEmulator, store: KubeStore, clock: Clock,
                scripted: ScriptedProbes) -> AsyncIterator[World]:
    manifest = agreement_manifest()
    apiserver.objects[AGREEMENTS, "payments", "payments-api"] = manifest
    parsed = agreement_from_manifest(manifest)
    # The scheduler runs on real time: a short interval keeps the test quick. What the engine
    # sees is the test's clock, which moves 30 s per probe and stamps every result.
    agreement = replace(parsed, endpoints=tuple(
        replace(e, interval=timedelta(milliseconds=20), timeout=timedelta(milliseconds=10))
        for e in parsed.endpoints))
    engine: Engine

    def deliver(owner: tuple[str, str], endpoint: Endpoint, result: ProbeResult) -> None:
        engine.on_probe_result(owner, endpoint, result)
        scripted.delivered.put_nowait(result)

    scheduler = ProbeScheduler(deliver, run=scripted.run)
    engine = Engine(store, EngineSettings(status_interval=300), clock=clock, scheduler=scheduler)
    engine.upsert_agreement(agreement)
    probing = asyncio.create_task(scheduler.run())
    yield World(engine, scripted, clock, apiserver, agreement)
    probing.cancel()
    await asyncio.gather(probing, return_exceptions=True)
