"""The plugin's API calls: the kubeconfig (with --kubeconfig and --context as kubectl reads
them), lists, reads, creates, and edits guarded by the object's resourceVersion."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "sla.dev", "v1alpha1"
JSON_PATCH = "application/json-patch+json"
REQUEST_TIMEOUT = 30
ATTEMPTS = 10
T = TypeVar("T")
# What the API server answers when a JSON patch's test operation fails (and for no other
# refusal of the patches written here, whose validation errors name the field).
_FAILED_PATCH = "the server rejected our request due to an error in our request"


class ClusterError(Exception):
    """A refusal or failure of the API server, in one line a person can act on."""


class Conflict(ClusterError):
    """The object changed between read and write."""


@dataclass
class Connection:
    api: client.ApiClient
    user: str  # the kubeconfig user of the context, recorded as who made a change
    namespace: str  # the context's namespace, else "default"


def connect(kubeconfig: str | None, context: str | None) -> Connection:
    source = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError) as error:
        raise ClusterError(f"no usable kubeconfig in {source}: {error}") from None
    chosen = current if context is None else next(
        (c for c in contexts or () if c.get("name") == context), None)
    if chosen is None:
        names = ", ".join(c.get("name", "?") for c in contexts or ()) or "none"
        raise ClusterError(f"context {context!r} not found in {source} (contexts: {names})")
    settings = chosen.get("context") or {}
    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=chosen.get("name"),
                                            persist_config=False)
    except (config.ConfigException, OSError) as error:
        raise ClusterError(f"context {chosen.get('name')!r} in {source}: {error}") from None
    if not api.configuration.verify_ssl:  # kubectl says nothing about it either
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return Connection(api, str(settings.get("user") or ""), str(settings.get("namespace") or
                                                                "default"))


def _message(error: ApiException) -> str:
    try:
        said = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        said = None
    return " ".join(str(said or error.reason or "no reason given").split())


def _call(what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except ApiException as error:
        message = _message(error)
        if error.status == 409 or (error.status == 422 and message == _FAILED_PATCH):
            raise Conflict(f"{what}: changed by someone else meanwhile ({message})") from None
        if error.status == 404 and "could not find the requested resource" in message:
            raise ClusterError("the sla.dev CustomResourceDefinitions are not installed "
                               "(kubectl apply -f crds/, or install the Helm chart)") from None
        kind = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                409: "AlreadyExists", 422: "Invalid"}.get(error.status, str(error.status))
        raise ClusterError(f"Error from server ({kind}): {message}") from None
    except urllib3.exceptions.HTTPError as error:
        reason = getattr(error, "reason", None) or error
        raise ClusterError(f"{what}: cannot reach the API server: "
                           f"{' '.join(str(reason).split())}") from None


class Cluster:
    def __init__(self, connection: Connection) -> None:
        self.custom = client.CustomObjectsApi(connection.api)
        self.connection = connection

    def list(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of a kind, in one namespace or (None) in all of them."""
        if namespace is None:
            listed = _call(f"listing {plural}", lambda: self.custom.list_cluster_custom_object(
                GROUP, VERSION, plural, _request_timeout=REQUEST_TIMEOUT))
        else:
            listed = _call(f"listing {plural} in {namespace}",
                           lambda: self.custom.list_namespaced_custom_object(
                               GROUP, VERSION, namespace, plural,
                               _request_timeout=REQUEST_TIMEOUT))
        return list(listed.get("items") or [])

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        try:
            return dict(_call(f"reading {plural}.{GROUP} {name!r}",
                              lambda: self.custom.get_namespaced_custom_object(
                                  GROUP, VERSION, namespace, plural, name,
                                  _request_timeout=REQUEST_TIMEOUT)))
        except ClusterError as error:
            if "(NotFound)" in str(error):
                raise ClusterError(f"{error} in namespace {namespace!r} (list them: "
                                   f"kubectl get {plural} -n {namespace})") from None
            raise

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        try:
            return dict(_call(f"creating {plural}.{GROUP} {name!r}",
                              lambda: self.custom.create_namespaced_custom_object(
                                  GROUP, VERSION, namespace, plural, body,
                                  _request_timeout=REQUEST_TIMEOUT)))
        except Conflict:
            raise ClusterError(f"{plural}.{GROUP} {name!r} already exists in namespace "
                               f"{namespace!r} (choose another with --name)") from None

    def edit(self, plural: str, namespace: str, name: str,
             decide: Callable[[dict[str, Any]], tuple[list[dict[str, Any]], T]]
             ) -> tuple[dict[str, Any], T]:
        """Reads the object, decides the JSON patch on what was read, and writes it only if
        the object is still that version; a conflicting edit is decided again on the fresh
        object (never written over). ``decide`` returns the operations and what to tell."""
        tested = None
        for attempt in range(ATTEMPTS):
            current = self.get(plural, namespace, name)
            version = (current.get("metadata") or {}).get("resourceVersion")
            if version == tested:  # refused, yet nobody changed it: not a conflict
                raise ClusterError(f"{plural}.{GROUP} {name!r}: the API server refused the "
                                   f"change ({_FAILED_PATCH})")
            ops, said = decide(current)
            guarded = [{"op": "test", "path": "/metadata/resourceVersion", "value": version},
                       *ops]
            try:
                patched = _call(f"{plural}.{GROUP} {name!r}", partial(
                    self.custom.patch_namespaced_custom_object, GROUP, VERSION, namespace,
                    plural, name, guarded, _content_type=JSON_PATCH,
                    _request_timeout=REQUEST_TIMEOUT))
            except Conflict:
                tested = version
                time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))
                continue
            return dict(patched), said
        raise ClusterError(f"{plural}.{GROUP} {name!r} kept changing under {ATTEMPTS} attempts; "
                           "nothing was written, try again")
