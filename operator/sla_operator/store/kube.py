"""The Store on the Kubernetes API: Incident objects, status subresources, Secrets, Events."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sla_operator.domain.errors import SecretRefused, SpecError
from sla_operator.domain.incidents import Change, apply_change
from sla_operator.domain.model import Incident
from sla_operator.domain.records import (
    AGREEMENT_LABEL,
    API_VERSION,
    change_entries,
    incident_from_manifest,
    incident_spec,
    label_value_ok,
    same_decision_basis,
    same_incident,
)
from sla_operator.store.base import Key, Kind, StoreError
from sla_operator.store.fence import Fenced, WriteSwitch

GROUP, VERSION = API_VERSION.split("/")
# Secrets a probe may send as a header must say so: anyone allowed to write an SLA could
# otherwise have any Secret of the namespace sent to a URL of their choosing.
PROBE_CREDENTIAL_LABEL = "sla.dev/probe-credential"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# The answer to a status write is not read: asked for the object's metadata only, the API
# server encodes and sends about 3 kB instead of the whole object (about 20 kB with 90 daily
# bars). A server that cannot answer so answers with the whole object as before.
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"
DEFAULT_RETRY_AFTER = 1.0  # a 429 that names no time
MAX_RETRY_AFTER = 300.0
log = logging.getLogger("sla_operator.store.kube")
T = TypeVar("T")


class KubeStore:
    """Writes through the Kubernetes API; the blocking client runs in worker threads."""

    def __init__(self, api: client.ApiClient, component: str = "sla-operator",
                 switch: WriteSwitch | None = None) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.component = component
        self.switch = switch or WriteSwitch()
        # Its own threads: API calls never queue behind probes' DNS lookups in the default pool.
        self._threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kube-api")
        # The newest resourceVersion of each incident this process wrote or was told of.
        self._incident_versions: dict[Key, int] = {}
        self._forbidden_said: set[str] = set()

    def outdated(self, manifest: Mapping[str, Any]) -> bool:
        """Whether an incident from the watch is older than one this process already wrote or
        saw: the watch may deliver the echo of a status write after the engine's next change,
        and that older copy must not replace the newer one. Remembers newer versions."""
        meta = manifest.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        version = _version_number(meta.get("resourceVersion"))
        known = self._incident_versions.get(key)
        if version is None:
            return False
        if known is not None and version < known:
            return True
        self._incident_versions[key] = version
        return False

    def forget(self, key: Key) -> None:
        self._incident_versions.pop(key, None)

    def _written(self, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
        self.outdated(manifest)
        return manifest

    async def call(self, fn: Callable[[], T]) -> T:
        """A blocking client call of the caller's, off the loop, failures as StoreError."""
        return await self._call(fn)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call; every failure (API, network, bad data) is a StoreError."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._threads, partial(fn, *args, **kwargs))
        except ApiException as error:
            if error.status == 403 and (terminating := _terminating_namespace(error)):
                # Not a missing permission: the namespace and all it holds are going away.
                raise StoreError(f"namespace {terminating} is being deleted", gone=True) from error
            if error.status == 403:
                raise StoreError(self._forbidden(error)) from error
            raise StoreError(f"API {error.status}: {error.reason}", gone=error.status == 404,
                             retry_after=retry_after(error)) from error
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as error:
            raise StoreError(f"API unreachable: {error}") from error

    async def _write(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A write, fenced (store/fence.py): checked before it is queued, and again in the
        worker thread just before the request leaves, however long it waited for a thread."""
        self.switch.check(what)
        return await self._call(self.switch.guard(what, fn), *args, **kwargs)

    def _forbidden(self, error: ApiException) -> str:
        """The API server's own words (they name the user, verb, resource and namespace),
        said once at WARNING: the engine retries, and a log flooded with it says no more."""
        try:
            said = json.loads(error.body or "{}").get("message")
        except (ValueError, AttributeError):
            said = None
        message = f"forbidden: {' '.join(str(said or error.reason).split())}; grant it in the chart's role"
        if message not in self._forbidden_said:
            self._forbidden_said.add(message)
            log.warning("%s", message)
        return message

    async def create_incident(self, incident: Incident, owner_uid: str | None) -> Incident:
        self.switch.check(f"incident {incident.name}")
        labels = {"sla.dev/type": incident.type.value, "sla.dev/severity": incident.severity.value}
        if label_value_ok(incident.agreement):  # spec.agreement always names it; labels are short
            labels[AGREEMENT_LABEL] = incident.agreement
        metadata: dict[str, Any] = {"namespace": incident.namespace, "labels": labels}
        if owner_uid:
            metadata["ownerReferences"] = [{
                "apiVersion": API_VERSION, "kind": Kind.AGREEMENT.value,
                "name": incident.agreement, "uid": owner_uid,
            }]
        spec = incident_spec(incident)
        if owner_uid:
            await self._check_owner(incident.namespace, incident.agreement, owner_uid)
        for attempt in range(1, 20):
            name = incident.name if attempt == 1 else f"{incident.name}-{attempt}"
            body = {"apiVersion": API_VERSION, "kind": Kind.INCIDENT.value,
                    "metadata": {**metadata, "name": name}, "spec": spec}
            try:
                created = await self._write(f"incident {name}",
                                            self.custom.create_namespaced_custom_object, GROUP,
                                            VERSION, incident.namespace, Kind.INCIDENT.plural, body)
                return _incident(self._written(created))
            except Fenced:
                raise
            except StoreError as error:
                if not isinstance(error.__cause__, ApiException) or error.__cause__.status != 409:
                    raise StoreError(f"creating incident {name}: {error}", gone=error.gone,
                                     retry_after=error.retry_after) from error
            existing = await self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION,
                                        incident.namespace, Kind.INCIDENT.plural, name)
            if same_incident(existing, spec):
                return _incident(self._written(existing))
        raise StoreError(f"no free name for incident {incident.name}")

    async def _check_owner(self, namespace: str, agreement: str, uid: str) -> None:
        """An incident is only created for the agreement that is there now: one owned by a
        deleted agreement would be collected at once, and created again at the next round."""
        try:
            current = await self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION,
                                       namespace, Kind.AGREEMENT.plural, agreement)
        except StoreError as error:
            raise StoreError(f"agreement {agreement}: {error}", gone=error.gone) from error
        meta = current.get("metadata") or {}
        if meta.get("uid") != uid or meta.get("deletionTimestamp"):
            raise StoreError(f"agreement {agreement} was deleted", gone=True)

    async def change_incident(self, incident: Incident, change: Change) -> Incident:
        self.switch.check(f"incident {incident.name}")
        # A JSON patch appends to the timeline, so entries people added are kept; the
        # resourceVersion test makes it fail rather than act on a copy someone changed since.
        current = await self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION,
                                   incident.namespace, Kind.INCIDENT.plural, incident.name)
        try:
            stored: Incident | None = incident_from_manifest(current)
        except SpecError:
            # A person's edit the operator cannot read is not in effect (the handler kept the
            # last valid version): the change applies to that version, its fields written over.
            stored = None
        if stored is not None and not same_decision_basis(stored, incident):
            # Decided on a copy a person has changed since: decide again on the new one.
            raise StoreError(f"incident {incident.name} changed since it was read; retrying")
        version = (current.get("metadata") or {}).get("resourceVersion")
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion",
                                      "value": version}] if version else []
        values, entries = change_entries(current.get("spec") or {}, incident, change.fields,
                                         change.updates, readable=stored is not None)
        ops += [{"op": "add", "path": f"/spec/{name}", "value": value} for name, value in values.items()]
        if not isinstance((current.get("spec") or {}).get("updates"), list):
            ops.append({"op": "add", "path": "/spec/updates", "value": []})
        ops += [{"op": "add", "path": "/spec/updates/-", "value": entry} for entry in entries]
        if "severity" in values:
            if not (current.get("metadata") or {}).get("labels"):
                ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
            ops.append({"op": "add", "path": "/metadata/labels/sla.dev~1severity",
                        "value": values["severity"]})
        patched = await self._write(f"incident {incident.name}",
                                    self.custom.patch_namespaced_custom_object, GROUP, VERSION,
                                    incident.namespace, Kind.INCIDENT.plural, incident.name, ops,
                                    _content_type=JSON_PATCH)
        try:
            return _incident(self._written(patched))
        except StoreError:  # still unreadable elsewhere: the operator goes on with its version
            return apply_change(incident, change)

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        what = f"the status of {kind.value} {key[0]}/{key[1]}"
        namespace, name = key
        if kind is not Kind.INCIDENT:
            # The answer (the whole object, status included) is not needed: it is not parsed.
            await self._write(what, _patch_unread, self.custom, namespace, kind.plural, name,
                              {"status": dict(status)})
            return
        patched = await self._write(what, self.custom.patch_namespaced_custom_object_status,
                                    GROUP, VERSION, namespace, kind.plural, name,
                                    {"status": dict(status)}, _content_type=MERGE_PATCH)
        if isinstance(patched, Mapping):
            self._written(patched)

    async def write_location_report(self, report: Mapping[str, Any], exists: bool = True) -> None:
        """Put a location's report (domain/location_reports.py): its spec merged into the
        object, created when there is none yet. Fenced like every write: only the location's
        elected reporter writes.

        ``exists``: whether the reporter last saw the report stored. One it did not see is
        created at once (one request, not a patch answered 404 and then a create: a new
        location's first reports are one per agreement); one created meanwhile by someone
        else (409) is patched instead."""
        meta = report["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        what = f"LocationReport {namespace}/{name}"
        if not exists:
            try:
                await self._write(what, self.custom.create_namespaced_custom_object, GROUP,
                                  VERSION, namespace, "locationreports", dict(report))
                return
            except Fenced:
                raise
            except StoreError as error:
                if not isinstance(error.__cause__, ApiException) or error.__cause__.status != 409:
                    raise
        try:
            await self._write(what, self.custom.patch_namespaced_custom_object, GROUP, VERSION,
                              namespace, "locationreports", name, {"spec": report["spec"]},
                              _content_type=MERGE_PATCH)
        except StoreError as error:
            if not error.gone:
                raise
            await self._write(what, self.custom.create_namespaced_custom_object, GROUP, VERSION,
                              namespace, "locationreports", dict(report))

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = await self._call(self.core.read_namespaced_secret, name, namespace)
        except StoreError as error:
            raise SecretRefused(_secret_failure(name, namespace, error)) from None
        labels = secret.metadata.labels or {}
        if labels.get(PROBE_CREDENTIAL_LABEL) != "true":
            raise SecretRefused(f"secret {name} is not labelled {PROBE_CREDENTIAL_LABEL}=true, "
                                "which a Secret needs to be sent by probes")
        data = secret.data or {}
        if key not in data:
            raise SecretRefused(f"secret {name} has no key {key!r}")
        try:
            return base64.b64decode(data[key]).decode()
        except (ValueError, UnicodeDecodeError):
            raise SecretRefused(f"secret {name}: key {key!r} is not UTF-8 text") from None

    async def record_event(self, kind: Kind, key: Key, reason: str, message: str,
                           warning: bool = False) -> None:
        if not self.switch.active:
            return  # the holder tells people; a standby would only repeat it
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
            await self._write(f"an event on {namespace}/{name}", self.core.create_namespaced_event,
                              namespace, body)
        except Fenced:
            return  # the Lease was lost meanwhile: the holder tells people
        except StoreError as error:  # an event is informative; never fail the caller for it
            # A refusal was said once already (see _forbidden); anything else each time.
            level = logging.DEBUG if str(error).startswith("forbidden:") else logging.WARNING
            log.log(level, "event %s on %s/%s not recorded: %s", reason, namespace, name, error)


def _secret_failure(name: str, namespace: str, error: StoreError) -> str:
    cause = error.__cause__
    status = cause.status if isinstance(cause, ApiException) else None
    if status == 404:
        return f"no secret {name} in namespace {namespace}"
    if status == 403:
        return (f"forbidden: the operator may not read secret {name} in namespace {namespace} "
                "(the chart grants get on secrets only in the namespaces of its value "
                "rbac.secretNamespaces)")
    return f"secret {name} could not be read: {error}"


def _patch_unread(custom: client.CustomObjectsApi, namespace: str, plural: str, name: str,
                  body: dict[str, Any]) -> None:
    """A status merge patch whose answer (the object's metadata only) is read off the
    connection but never parsed (errors still raise ApiException, read and parsed as usual)."""
    response = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, body, _content_type=MERGE_PATCH,
        _preload_content=False, _headers={"Accept": METADATA_ONLY})
    try:
        response.drain_conn()
    finally:
        response.release_conn()


def retry_after(error: ApiException) -> float | None:
    """Seconds the API server asked the client to wait: 429 Too Many Requests (API Priority
    and Fairness) always means wait, 1 s when it names no time; any other answer only when it
    carries ``Retry-After`` (a 503 from an overloaded server, say). Seconds or an HTTP date;
    capped at MAX_RETRY_AFTER so a wrong header cannot stop writing for long."""
    headers = error.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    seconds: float | None = None
    if value is not None:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(text) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError, IndexError):
                seconds = None
    if seconds is None or seconds != seconds:  # absent, unreadable or NaN
        return DEFAULT_RETRY_AFTER if error.status == 429 else None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _version_number(version: object) -> int | None:
    """resourceVersion as a number where it is one (etcd's revision); None: not comparable."""
    return int(version) if isinstance(version, str) and version.isdigit() else None


def _incident(manifest: Mapping[str, Any]) -> Incident:
    """An incident read back; one a person made unreadable is a store failure, not a crash."""
    try:
        return incident_from_manifest(manifest)
    except SpecError as error:
        name = (manifest.get("metadata") or {}).get("name")
        raise StoreError(f"incident {name} cannot be read: {error}") from error


def _terminating_namespace(error: ApiException) -> str | None:
    """The namespace a 403 refused a write in because it is being deleted (the API server's
    NamespaceTerminating cause, or its message where a server sends no cause), else None."""
    try:
        status = json.loads(error.body or "{}")
    except ValueError:
        return None
    if not isinstance(status, dict):
        return None
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    for cause in causes if isinstance(causes, list) else []:
        if isinstance(cause, dict) and cause.get("reason") == "NamespaceTerminating":
            message = str(cause.get("message") or "")
            # "namespace NAME is being terminated"
            return message.split()[1] if message.startswith("namespace ") else "(unnamed)"
    message = str(status.get("message") or "")
    marker = "unable to create new content in namespace "
    if marker in message and message.endswith("because it is being terminated"):
        return message.split(marker, 1)[1].split()[0]
    return None
