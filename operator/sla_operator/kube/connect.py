"""Reaching the cluster: credentials, and the first lists that prove the kinds can be read.

Both run before kopf starts: kopf retries a failing startup forever, while a missing
kubeconfig, a missing CRD or a missing permission needs a person, told once on stderr.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
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
              cached: bool = False) -> list[dict[str, Any]]:
    """Every object of one of the operator's kinds, or a StartupError saying what is missing.

    ``cached``: from the API server's watch cache (resourceVersion 0), as current as its
    watch of etcd, which lags by milliseconds, instead of a read through to etcd. For a
    thousand agreements with their statuses (15 MB) the read through took 6.5-7.3 s on the
    local control plane, the cached list 2.2-2.5 s."""
    custom = client.CustomObjectsApi(api)
    version = {"resource_version": "0"} if cached else {}
    try:
        if not namespaces:
            listed: dict[str, Any] = custom.list_cluster_custom_object(
                GROUP, VERSION, plural, _request_timeout=LIST_TIMEOUT_SECONDS, **version)
            return list(listed.get("items") or [])
        items: list[dict[str, Any]] = []
        for namespace in namespaces:
            listed = custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, _request_timeout=LIST_TIMEOUT_SECONDS,
                **version)
            items += listed.get("items") or []
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


def first_lists(api: client.ApiClient, namespaces: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Every object of the three kinds, read once before the engine decides anything; the
    lists also prove the CRDs and the permissions before kopf starts.

    From the watch cache: what a restart waits for before its first status. An object
    changed in the milliseconds the cache may lag comes in again with kopf's watch, whose
    own list is a read through, and the change is taken in then."""
    return {plural: list_kind(api, plural, namespaces, cached=True) for plural in PRELOADED_KINDS}
