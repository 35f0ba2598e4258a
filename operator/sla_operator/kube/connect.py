"""Reaching the cluster: credentials, and the first lists that prove the kinds can be read.

Both run before kopf starts: kopf retries a failing startup forever, while a missing
kubeconfig, a missing CRD or a missing permission needs a person, told once on stderr.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sla_operator.store.kube import GROUP, VERSION

log = logging.getLogger("sla_operator.kube")

LIST_TIMEOUT_SECONDS = 30
CONNECTION_POOL_SIZE = 32
PRELOADED_KINDS = ("servicelevelagreements", "incidents", "maintenancewindows")


class StartupError(Exception):
    """Why the operator cannot work with the cluster, in one line a person can act on."""


def _one_line(error: object) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def api_client() -> client.ApiClient:
    """In-cluster credentials when running in a Pod, else KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        _load_kube_config()
    configuration = client.Configuration.get_default_copy()
    # Enough kept connections for every thread that calls the API at once (the store's
    # writers, kopf's handlers, resync, the rule keeper): a connection that does not fit in
    # the pool is closed after its request, and the next one pays a new TLS handshake.
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    api = client.ApiClient(configuration)
    if not api.configuration.verify_ssl:
        # Said once here rather than by urllib3 on every request.
        log.warning("the kubeconfig skips TLS verification of the API server")
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return api


def _load_kube_config() -> None:
    listed = os.environ.get("KUBECONFIG")
    source = f"KUBECONFIG={listed}" if listed else config.KUBE_CONFIG_DEFAULT_LOCATION
    paths = [p for p in (listed or "").split(os.pathsep) if p] or [
        os.path.expanduser(config.KUBE_CONFIG_DEFAULT_LOCATION)]
    if not any(os.path.isfile(path) for path in paths):
        raise StartupError(f"no Kubernetes configuration: not running in a cluster, and {source} "
                           "names no existing file")
    try:
        config.load_kube_config()
    except Exception as error:  # YAML, contexts, exec plugins: each fails its own way
        raise StartupError(f"no usable Kubernetes configuration in {source}: "
                           f"{_one_line(error)}") from None


def list_kind(api: client.ApiClient, plural: str, namespaces: Sequence[str],
              cached: bool = False,
              versions: dict[str | None, str] | None = None) -> list[dict[str, Any]]:
    """Every object of one of the operator's kinds, or a StartupError saying what is missing.

    ``cached``: from the API server's watch cache (resourceVersion 0), as current as its
    watch of etcd, which lags by milliseconds, instead of a read through to etcd. For a
    thousand agreements with their statuses (15 MB) the read through took 6.5-7.3 s on the
    local control plane, the cached list 2.2-2.5 s.

    ``versions`` receives each list's resourceVersion, by namespace (None: all of them)."""
    custom = client.CustomObjectsApi(api)
    version = {"resource_version": "0"} if cached else {}
    try:
        calls = ([(None, partial(custom.list_cluster_custom_object, GROUP, VERSION, plural))]
                 if not namespaces else
                 [(namespace, partial(custom.list_namespaced_custom_object, GROUP, VERSION,
                                      namespace, plural)) for namespace in namespaces])
        items: list[dict[str, Any]] = []
        for namespace, call in calls:
            listed: dict[str, Any] = call(_request_timeout=LIST_TIMEOUT_SECONDS, **version)
            items += listed.get("items") or []
            revision = (listed.get("metadata") or {}).get("resourceVersion")
            if versions is not None and isinstance(revision, str) and revision:
                versions[namespace] = revision
        return items
    except ApiException as error:
        raise StartupError(_refusal(error, plural, namespaces)) from None
    except urllib3.exceptions.HTTPError as error:
        reason = getattr(error, "reason", None) or error
        raise StartupError(f"cannot reach the API server at {api.configuration.host}: "
                           f"{_one_line(reason)}") from None


def _refusal(error: ApiException, plural: str, namespaces: Sequence[str]) -> str:
    resource = f"{plural}.{GROUP}"
    scope = f"in namespace(s) {', '.join(namespaces)}" if namespaces else "in all namespaces"
    if error.status == 404:
        return (f"the CustomResourceDefinition {resource} is not installed "
                f"(kubectl apply -f crds/, or install the Helm chart)")
    if error.status == 401:
        return "the API server rejected the credentials (401 Unauthorized)"
    if error.status == 403:
        return (f"not allowed to list {resource} {scope} (403 Forbidden: "
                f"{_server_message(error)}); grant the chart's ClusterRole")
    return f"listing {resource} {scope} failed: API {error.status} {error.reason}"


def _server_message(error: ApiException) -> str:
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return _one_line(message or error.reason or "no reason given")


@dataclass
class FirstLists:
    """What the first lists returned: the objects of each kind, and each list's
    resourceVersion by kind and namespace (None: all namespaces), which kopf's watches
    start from (``kube.primed``)."""

    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    versions: dict[tuple[str, str | None], str] = field(default_factory=dict)

    def __getitem__(self, plural: str) -> list[dict[str, Any]]:
        return self.items[plural]


def first_lists(api: client.ApiClient, namespaces: Sequence[str]) -> FirstLists:
    """Every object of the three kinds, read once before the engine decides anything; the
    lists also prove the CRDs and the permissions before kopf starts.

    From the watch cache: what a restart waits for before its first status. kopf's watches
    start from these lists' resourceVersions, so a change the cache had not yet seen comes
    as a watch event."""
    listed = FirstLists()
    for plural in PRELOADED_KINDS:
        versions: dict[str | None, str] = {}
        listed.items[plural] = list_kind(api, plural, namespaces, cached=True, versions=versions)
        listed.versions.update({(plural, namespace): version
                                for namespace, version in versions.items()})
    return listed
