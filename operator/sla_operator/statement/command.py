"""Reading one agreement's records (from the cluster, or from local mode's folders) and
writing its statement in the format asked for."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sla_operator.domain.customer_statement import CustomerStatement, build_statement
from sla_operator.domain.errors import SpecError
from sla_operator.domain.fields import parse_time
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import Agreement, Incident, MaintenanceWindow
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.records import incident_from_manifest, maintenance_from_manifest
from sla_operator.domain.schedule import validate_maintenance
from sla_operator.domain.support import support_request_from_manifest

T = TypeVar("T")
Obj = Mapping[str, Any]


class StatementRefused(Exception):
    """The statement cannot be made as asked; the message says why (exit 2)."""


@dataclass(frozen=True)
class Records:
    agreements: Sequence[Obj]
    windows: Sequence[Obj]
    incidents: Sequence[Obj]
    requests: Sequence[Obj] = ()  # SupportRequests


def _readable(items: Iterable[Obj], read: Callable[[Obj], T], kind: str) -> list[T]:
    kept = []
    for item in items:
        try:
            kept.append(read(item))
        except SpecError as error:
            meta = item.get("metadata") or {}
            print(f"{kind} {meta.get('namespace')}/{meta.get('name')} skipped: {error}",
                  file=sys.stderr)
    return kept


def _window(item: Obj) -> MaintenanceWindow:
    window = maintenance_from_manifest(item)
    validate_maintenance(window)
    return window


def unmonitored_of(status: Obj, now: datetime) -> list[Interval]:
    """The unmonitored gaps the status records, and the time since its last evaluation up to
    ``now``: what nobody measured (the operator is stopped, or is between two writes) is
    unmonitored here, as the operator itself counts it when it starts again."""
    gaps = [Interval(parse_time(g.get("start"), "status.unmonitored[].start"),
                     parse_time(g.get("end"), "status.unmonitored[].end"))
            for g in status.get("unmonitored") or ()]
    if status.get("lastEvaluated") is not None:
        # Written to the whole second: the evaluation was up to a second after it, so the
        # gap starts at the next second (as the operator's own restart counts it), never
        # inside time the status's figures already cover.
        evaluated = parse_time(status.get("lastEvaluated"), "status.lastEvaluated")
        since = evaluated + timedelta(seconds=1)
        if since < now:
            gaps.append(Interval(since, now))
    return gaps


def cluster_records(namespaces: Sequence[str]) -> Records:
    from sla_operator.kube.connect import api_client, list_kind

    api = api_client()
    return Records(list_kind(api, "servicelevelagreements", namespaces),
                   list_kind(api, "maintenancewindows", namespaces),
                   list_kind(api, "incidents", namespaces),
                   list_kind(api, "supportrequests", namespaces))


def folder_records(manifests: Path, state: Path, namespaces: Sequence[str]) -> Records:
    """The manifests folder as `local` reads it; incidents and statuses from its state folder
    (an incident there replaces a manifest of the same name: it is the operator's record)."""
    from sla_operator.local.files import read_yaml
    from sla_operator.local.manifests import FileError, FolderWatch, read_manifests

    if not manifests.is_dir():
        raise StatementRefused(f"--manifests {manifests}: not a folder")
    if not state.is_dir():
        raise StatementRefused(f"--state {state}: not a folder")
    found: dict[str, list[Obj]] = {"ServiceLevelAgreement": [], "MaintenanceWindow": [],
                                   "Incident": [], "SupportRequest": []}
    for path in FolderWatch(manifests).files():
        try:
            read, _ = read_manifests(path, str(path.relative_to(manifests)), [])
        except FileError as error:
            print(error, file=sys.stderr)
            continue
        for manifest in read:
            if manifest.kind in found and not manifest.problems:
                found[manifest.kind].append(manifest.body)
    incidents = {_key(i): i for i in found["Incident"]}
    requests = _opened_when_first_seen(found["SupportRequest"], state, "supportRequests")
    for path in sorted((state / "incidents").glob("*/*.yaml")):
        incident = read_yaml(path)
        incidents[_key(incident)] = incident
    agreements = []
    # Created when local mode first saw them: the time before is unmonitored, as in its status.
    for body in _opened_when_first_seen(found["ServiceLevelAgreement"], state, "agreements"):
        namespace, name = _key(body)
        status_file = state / "status" / "servicelevelagreements" / namespace / f"{name}.yaml"
        status = read_yaml(status_file) if status_file.is_file() else {}
        agreements.append({**body, "status": status.get("status", status)})
    chosen = [a for a in agreements if not namespaces or _key(a)[0] in namespaces]
    return Records(chosen, found["MaintenanceWindow"], list(incidents.values()), requests)


def _opened_when_first_seen(objects: Sequence[Obj], state: Path, section: str) -> list[Obj]:
    """Objects as local mode takes them in: one without a creation time was created when local
    mode first saw it (its registry's ``section``: agreements, supportRequests), as its
    statuses count it; a support request's spec.openedAt still says otherwise."""
    from sla_operator.local.files import read_yaml
    from sla_operator.local.store import REGISTRY_FILE

    registry_file = state / REGISTRY_FILE
    registry = read_yaml(registry_file) if registry_file.is_file() else {}
    seen = registry.get(section) if isinstance(registry, Mapping) else None
    seen = seen if isinstance(seen, Mapping) else {}
    result = []
    for body in objects:
        meta = body.get("metadata") or {}
        entry = seen.get("/".join(_key(body)))
        if "creationTimestamp" not in meta and isinstance(entry, Mapping) \
                and entry.get("firstSeen"):
            body = {**body, "metadata": {**meta, "creationTimestamp": entry["firstSeen"]}}
        result.append(body)
    return result


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name", ""))


def make_statement(records: Records, agreement_name: str | None, period: str,
                   now: datetime) -> CustomerStatement:
    candidates = [a for a in records.agreements
                  if agreement_name is None or _key(a)[1] == agreement_name]
    if len(candidates) != 1:
        names = ", ".join(sorted("/".join(_key(a)) for a in records.agreements)) or "none"
        wanted = f"agreement {agreement_name!r}" if agreement_name else "one agreement"
        raise StatementRefused(f"--agreement: {wanted} is needed, found "
                               f"{len(candidates)} (agreements: {names})")
    item = candidates[0]
    try:
        agreement: Agreement = agreement_from_manifest(item)
        unmonitored = unmonitored_of(item.get("status") or {}, now)
    except SpecError as error:
        raise StatementRefused(f"agreement {'/'.join(_key(item))}: {error}") from None
    windows = _readable(records.windows, _window, "maintenance window")
    incidents: list[Incident] = _readable(records.incidents, incident_from_manifest, "incident")
    requests = _readable(records.requests, support_request_from_manifest, "support request")
    try:
        return build_statement(agreement, windows, incidents, unmonitored, period, now, requests)
    except SpecError as error:
        raise StatementRefused(f"--period: {error}") from None


def render(statement: CustomerStatement, output: str) -> bytes:
    from sla_operator.statement import formats

    if output == "json":
        return formats.to_json(statement).encode()
    if output == "markdown":
        return formats.to_markdown(statement).encode()
    from sla_operator.statement.html import to_html, to_pdf

    return to_pdf(statement) if output == "pdf" else to_html(statement).encode()


def run_statement(namespaces: Sequence[str], agreement: str | None, period: str,
                  manifests: str | None, state: str | None, output: str,
                  out: str | None) -> int:
    for noisy in ("weasyprint", "fontTools"):  # a line per page and per font at INFO
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        if (manifests is None) != (state is None):
            raise StatementRefused("--manifests and --state go together (local mode's folders)")
        records = (folder_records(Path(manifests), Path(state), namespaces)
                   if manifests is not None and state is not None
                   else cluster_records(namespaces))
        data = render(make_statement(records, agreement, period, datetime.now(UTC)), output)
    except StatementRefused as error:
        print(f"sla-operator statement: {error}", file=sys.stderr)
        return 2
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(out).write_bytes(data)
    return 0
