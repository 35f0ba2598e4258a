"""The Store on the Kubernetes API: Incident objects, status subresources, Secrets, Events."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sla_operator.domain.incidents import Change
from sla_operator.domain.model import Incident
from sla_operator.domain.records import (
    AGREEMENT_LABEL,
    format_time,
    incident_from_manifest,
    incident_spec,
    update_dict,
)
from sla_operator.store.base import Key, Kind, StoreError

GROUP, VERSION = "sla.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_FIELD_PATHS = {"severity": "severity", "state": "state", "resolved_at": "resolvedAt",
                "endpoints": "endpoints", "title": "title"}

log = logging.getLogger("sla_operator.store.kube")
T = TypeVar("T")


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


class KubeStore:
    """Writes through the Kubernetes API; the blocking client runs in worker threads."""

    def __init__(self, api: client.ApiClient, component: str = "sla-operator") -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.component = component

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ApiException as error:
            raise StoreError(f"API {error.status}: {error.reason}") from error

    async def create_incident(self, incident: Incident, owner_uid: str | None) -> Incident:
        labels = {AGREEMENT_LABEL: incident.agreement, "sla.dev/type": incident.type.value,
                  "sla.dev/severity": incident.severity.value}
        metadata: dict[str, Any] = {"namespace": incident.namespace, "labels": labels}
        if owner_uid:
            metadata["ownerReferences"] = [{
                "apiVersion": API_VERSION, "kind": Kind.AGREEMENT.value,
                "name": incident.agreement, "uid": owner_uid,
            }]
        spec = incident_spec(incident)
        for attempt in range(1, 20):
            name = incident.name if attempt == 1 else f"{incident.name}-{attempt}"
            body = {"apiVersion": API_VERSION, "kind": Kind.INCIDENT.value,
                    "metadata": {**metadata, "name": name}, "spec": spec}
            try:
                created = await asyncio.to_thread(
                    self.custom.create_namespaced_custom_object, GROUP, VERSION,
                    incident.namespace, Kind.INCIDENT.plural, body)
                return incident_from_manifest(created)
            except ApiException as error:
                if error.status != 409:
                    raise StoreError(f"creating incident {name}: API {error.status}: "
                                     f"{error.reason}") from error
            existing = await self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION,
                                        incident.namespace, Kind.INCIDENT.plural, name)
            if _same_incident(existing, spec):
                return incident_from_manifest(existing)
        raise StoreError(f"no free name for incident {incident.name}")

    async def change_incident(self, incident: Incident, change: Change) -> Incident:
        # A JSON patch appends to the timeline, so entries people added are kept; the
        # resourceVersion test makes it fail rather than act on a copy someone changed since.
        current = await self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION,
                                   incident.namespace, Kind.INCIDENT.plural, incident.name)
        version = (current.get("metadata") or {}).get("resourceVersion")
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion",
                                      "value": version}] if version else []
        ops += [{"op": "add", "path": f"/spec/{_FIELD_PATHS[name]}", "value": _plain(value)}
                for name, value in change.fields.items()]
        if not isinstance((current.get("spec") or {}).get("updates"), list):
            ops.append({"op": "add", "path": "/spec/updates", "value": []})
        ops += [{"op": "add", "path": "/spec/updates/-", "value": update_dict(u)}
                for u in change.updates]
        if "severity" in change.fields:
            ops.append({"op": "add", "path": "/metadata/labels/sla.dev~1severity",
                        "value": _plain(change.fields["severity"])})
        patched = await self._call(self.custom.patch_namespaced_custom_object, GROUP, VERSION,
                                   incident.namespace, Kind.INCIDENT.plural, incident.name, ops,
                                   _content_type=JSON_PATCH)
        return incident_from_manifest(patched)

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        namespace, name = key
        await self._call(self.custom.patch_namespaced_custom_object_status, GROUP, VERSION,
                         namespace, kind.plural, name, {"status": dict(status)},
                         _content_type=MERGE_PATCH)

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = await asyncio.to_thread(self.core.read_namespaced_secret, name, namespace)
        except ApiException as error:
            raise KeyError(f"secret {name}: API {error.status} {error.reason}") from error
        data = secret.data or {}
        if key not in data:
            raise KeyError(f"secret {name} has no key {key}")
        return base64.b64decode(data[key]).decode()

    async def record_event(self, kind: Kind, key: Key, reason: str, message: str,
                           warning: bool = False) -> None:
        namespace, name = key
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{name}.", namespace=namespace),
            involved_object=client.V1ObjectReference(api_version=API_VERSION, kind=kind.value,
                                                     name=name, namespace=namespace),
            reason=reason, message=message[:1024], type="Warning" if warning else "Normal",
            first_timestamp=now, last_timestamp=now, count=1,
            source=client.V1EventSource(component=self.component),
        )
        try:
            await asyncio.to_thread(self.core.create_namespaced_event, namespace, body)
        except ApiException as error:  # an event is informative; never fail the caller for it
            log.warning("event %s on %s/%s not recorded: %s", reason, namespace, name, error.reason)


def _same_incident(existing: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """An object already there is ours when it records the same outage (same start, same kind)."""
    other = existing.get("spec") or {}
    return all(other.get(k) == spec.get(k) for k in ("agreement", "type", "startedAt", "dependency"))
