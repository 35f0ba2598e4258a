"""The resync's lists on a real API server: metadata only, and enough to drop what is gone.

Every resync lists both kinds; whole objects would carry every agreement's status (megabytes
for a thousand of them, encoded by the API server and parsed by the operator each time).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import config

from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.engine import Engine
from sla_operator.kube.watch import Resync, WatchTracker
from sla_operator.store.base import Kind
from sla_operator.store.kube import KubeStore
from support import namespace_with_crds

pytestmark = pytest.mark.e2e

Kubectl = Callable[..., Any]


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with namespace_with_crds(kubectl, "e2e-resync") as name:
        yield name


def manifest(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"service": "Web", "objective": "99.9",
                     "endpoints": [{"name": "home", "http": {"url": "http://127.0.0.1:9/"}}]}}


def test_the_resync_lists_metadata_only_and_drops_what_the_server_lacks(
        kubectl: Kubectl, kubeconfig: str, namespace: str) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(manifest(namespace, "kept")))
    api = config.new_client_from_config(config_file=kubeconfig)
    try:
        store = KubeStore(api)
        engine = Engine(store)
        for name in ("kept", "gone"):
            engine.upsert_agreement(agreement_from_manifest(manifest(namespace, name)))
        resync = Resync(engine, store, [namespace], WatchTracker(engine.clock, timedelta(60)), 60)

        items, revision = asyncio.run(resync._list(Kind.AGREEMENT, metadata_only=True))
        assert [item["metadata"]["name"] for item in items] == ["kept"]
        assert "spec" not in items[0] and items[0]["metadata"]["resourceVersion"]
        assert revision is not None
        whole, _ = asyncio.run(resync._list(Kind.AGREEMENT))
        assert whole[0]["spec"]["service"] == "Web"

        asyncio.run(resync.once())
        assert list(engine.agreements) == [(namespace, "kept")]
    finally:
        api.close()
