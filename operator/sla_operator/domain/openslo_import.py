"""OpenSLO v1 SLOs as ServiceLevelAgreement manifests, or a refusal naming each field that
an agreement cannot express.

An agreement measures availability with its own probes: the share of eligible time its
endpoints are up, over a calendar period or a rolling window. So an SLO imports when it says
the same kind of thing: one objective on a ratio indicator (whose queries the probes replace),
counted as occurrences or as ratio time slices, over a rolling window in minutes to weeks or a
calendar week, month, quarter or year starting at local midnight. The endpoints are left empty
for a person to fill in; the operator refuses the agreement until they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sla_operator.domain.errors import Problem, SpecError
from sla_operator.domain.fields import Collector, check_zone
from sla_operator.domain.openslo_export import (
    ANNOTATION_AGREEMENT,
    ANNOTATION_ALERTING,
    ANNOTATION_ENVIRONMENT,
    ANNOTATION_NAMESPACE,
    API_VERSION,
)
from sla_operator.domain.openslo_tiers import Index, tiers_spec
from sla_operator.domain.parse import agreement_from_manifest

Document = dict[str, Any]
NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ROLLING: Final = re.compile(r"^[1-9][0-9]*[mhdw]$")
CALENDAR: Final = {"1w": "week", "1M": "month", "1Q": "quarter", "1Y": "year"}
FIRST_DAYS: Final = {"week": "on a Monday", "month": "on the 1st",
                     "quarter": "on the 1st of January, April, July or October",
                     "year": "on January 1st"}
RATIO_METHODS: Final = ("Occurrences", "RatioTimeslices")
PLACEHOLDER_ENDPOINT: Final = {"name": "fill-in", "tcp": {"host": "fill-in.invalid", "port": 1}}


@dataclass(frozen=True)
class Imported:
    slo: str
    manifest: Document
    notes: tuple[str, ...]  # what a person must know: the endpoints to fill in, what changed


@dataclass(frozen=True)
class Refused:
    slo: str
    error: SpecError


def import_documents(documents: Sequence[object],
                     namespace: str | None = None) -> list[Imported | Refused]:
    """Each SLO of an OpenSLO stream, imported or refused; the other kinds are read as the
    SLOs refer to them (Service, SLI, AlertPolicy, AlertCondition)."""
    index = Index.of(documents)
    results: list[Imported | Refused] = []
    for slo in index.slos:
        name = str((slo.get("metadata") or {}).get("name"))
        try:
            results.append(import_slo(slo, index, namespace))
        except SpecError as error:
            results.append(Refused(name, error))
    return results


def import_slo(slo: Mapping[str, Any], index: Index, namespace: str | None) -> Imported:
    errors = Collector()
    meta = slo.get("metadata") or {}
    spec = slo.get("spec") or {}
    annotations = meta.get("annotations") or {}
    name = str(annotations.get(ANNOTATION_AGREEMENT) or meta.get("name") or "")
    if slo.get("apiVersion") != API_VERSION:
        errors.add("apiVersion", f"{slo.get('apiVersion')!r} is not read; import reads {API_VERSION}")
    if not NAME.match(name):
        errors.add("metadata.name", f"{name!r} is not a DNS label (a-z, 0-9 and '-', at most 63), "
                                    "as an agreement's name must be")
    notes = [f"spec.endpoints is empty: fill in how to probe {_service(spec, meta, index)!r} "
             "(http, tcp, dns, grpc or tls; docs/API.md); the operator refuses the agreement "
             "until it has one"]
    errors.run(lambda: notes.extend(_indicator(spec, index)), None)
    no_window: Document = {}
    window = errors.run(lambda: _window(spec.get("timeWindow")), no_window)
    objective = errors.run(lambda: _objective(spec), "")
    no_labels: dict[str, str] = {}
    labels = errors.run(lambda: _labels(meta.get("labels")), no_labels)
    if spec.get("budgetingMethod") == "RatioTimeslices":
        notes.append("budgetingMethod RatioTimeslices: measured per second of eligible time, "
                     "not averaged per time slice")
    environment = str(annotations.get(ANNOTATION_ENVIRONMENT, "production"))
    if environment not in ("production", "sandbox"):
        errors.add(f"metadata.annotations.{ANNOTATION_ENVIRONMENT}",
                   f"{environment!r}: production or sandbox")
    alerting: Document = {}
    if str(annotations.get(ANNOTATION_ALERTING, "")).lower() == "false":
        alerting = {"enabled": False}
    else:
        unread: tuple[list[Document] | None, list[str]] = (None, [])
        tiers, tier_notes = errors.run(lambda: tiers_spec(
            spec.get("alertPolicies"), index, sandbox=environment == "sandbox"), unread)
        notes.extend(tier_notes)
        if tiers:
            alerting = {"tiers": tiers}
    errors.raise_if_any()
    target_namespace = namespace or annotations.get(ANNOTATION_NAMESPACE)
    manifest: Document = {
        "apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
        "metadata": {"name": name, **({"namespace": target_namespace} if target_namespace else {}),
                     **({"labels": labels} if labels else {})},
        "spec": {"service": _service(spec, meta, index),
                 **({"environment": environment} if environment != "production" else {}),
                 "objective": objective, "window": window,
                 "endpoints": [], **({"alerting": alerting} if alerting else {})}}
    _check(manifest)
    return Imported(str(meta.get("name")), manifest, tuple(notes))


def _service(spec: Mapping[str, Any], meta: Mapping[str, Any], index: Index) -> str:
    """The Service's display name where the file has it; else the SLO's service or name."""
    service = index.services.get(str(spec.get("service")))
    shown = (service or {}).get("metadata", {}).get("displayName") if service else None
    return str(shown or spec.get("service") or meta.get("displayName") or meta.get("name"))


def _indicator(spec: Mapping[str, Any], index: Index) -> list[str]:
    objectives = spec.get("objectives") or []
    composite = [i for i, o in enumerate(objectives) if isinstance(o, Mapping)
                 and (o.get("indicator") or o.get("indicatorRef"))]
    if composite:
        raise SpecError([Problem(f"spec.objectives[{i}].indicator", "a composite SLO (an "
                                 "indicator per objective) cannot be one agreement")
                         for i in composite])
    if spec.get("indicator") is not None:
        path, indicator = "spec.indicator", spec["indicator"]
    elif spec.get("indicatorRef") is not None:
        path, indicator = "spec.indicatorRef", index.slis.get(str(spec["indicatorRef"]))
        if indicator is None:
            return [f"spec.indicatorRef {spec['indicatorRef']!r} is not in the file; the "
                    "operator's probes replace it anyway"]
    else:
        raise SpecError.at("spec.indicator", "missing (and no indicatorRef)")
    body = indicator.get("spec") or {}
    if "thresholdMetric" in body:
        raise SpecError.at(f"{path}.spec.thresholdMetric" if path == "spec.indicator" else path,
                           "a threshold on a metric's value (latency, say) is not availability: "
                           "an agreement's objective is the share of time its endpoints are up")
    return ["the indicator's queries are replaced by the operator's probes: availability is the "
            "share of eligible time the endpoints are up"]


def _window(raw: object) -> Document:
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], Mapping):
        raise SpecError.at("spec.timeWindow", "must hold exactly one window: an agreement is "
                                              "measured over a calendar period or a rolling window")
    window, path = raw[0], "spec.timeWindow[0]"
    duration = str(window.get("duration"))
    calendar = window.get("calendar")
    rolling = window.get("isRolling", calendar is None)
    if rolling:
        if calendar is not None:
            raise SpecError.at(f"{path}.isRolling", "true with a calendar: a window is one or "
                                                    "the other")
        if not ROLLING.match(duration):
            raise SpecError.at(f"{path}.duration", f"{duration!r}: a rolling window is a number "
                                                   "of minutes, hours, days or weeks (m, h, d, w)")
        return {"type": "rolling", "duration": duration}
    errors = Collector()
    period = CALENDAR.get(duration)
    if period is None:
        errors.add(f"{path}.duration", f"{duration!r} is not a calendar period of an agreement: "
                                       "1w, 1M, 1Q or 1Y (m is minutes in OpenSLO)")
    calendar = calendar if isinstance(calendar, Mapping) else {}
    zone = errors.run(lambda: check_zone(calendar.get("timeZone"), f"{path}.calendar.timeZone"),
                      "UTC")
    errors.run(lambda: _aligned(calendar.get("startTime"), period, f"{path}.calendar.startTime"),
               None)
    errors.raise_if_any()
    return {"type": "calendar", "period": period, "timeZone": zone}


def _aligned(raw: object, period: str | None, path: str) -> None:
    """The start must be local midnight on the first day of such a period."""
    try:
        start = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    except ValueError:
        raise SpecError.at(path, f"{raw!r} is not a date with a time") from None
    day: date = start.date()
    firsts = {"week": day.weekday() == 0, "month": day.day == 1,
              "quarter": day.day == 1 and day.month in (1, 4, 7, 10),
              "year": (day.month, day.day) == (1, 1)}
    if start.time() != datetime.min.time() or (period is not None and not firsts[period]):
        raise SpecError.at(path, f"{raw!s}: an agreement's {period or 'calendar'} periods start "
                                 f"at local midnight (00:00:00) {FIRST_DAYS.get(period or '', '')}"
                                 .rstrip())


def _objective(spec: Mapping[str, Any]) -> str:
    method = spec.get("budgetingMethod")
    objectives = spec.get("objectives") or []
    errors = Collector()
    if method not in RATIO_METHODS:
        errors.add("spec.budgetingMethod", f"{method or 'missing'}: an agreement counts every "
                   "second up or down (Occurrences, or RatioTimeslices); Timeslices judges a "
                   "whole slice good or bad by timeSliceTarget, which it cannot")
    if len(objectives) != 1 or not isinstance(objectives[0], Mapping):
        errors.add("spec.objectives", f"{len(objectives)} objectives: an agreement has exactly one")
        errors.raise_if_any()
    objective, path = objectives[0], "spec.objectives[0]"
    if objective.get("op") not in (None, "gt", "gte"):
        errors.add(f"{path}.op", f"{objective['op']!r}: an agreement's objective is a floor "
                                 "that availability stays above (gt or gte)")
    if objective.get("value") is not None:
        errors.add(f"{path}.value", "a threshold on a metric's value is not availability")
    if objective.get("timeSliceTarget") is not None:
        errors.add(f"{path}.timeSliceTarget", "judges each time slice good or bad as a whole; "
                                              "an agreement counts every second")
    percent = _percent(objective, path, errors)
    errors.raise_if_any()
    return percent


def _percent(objective: Mapping[str, Any], path: str, errors: Collector) -> str:
    given = [f for f in ("target", "targetPercent") if objective.get(f) is not None]
    if len(given) != 1:
        errors.add(path, "needs exactly one of target and targetPercent")
        return ""
    try:
        value = Decimal(str(objective[given[0]])) * (100 if given[0] == "target" else 1)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 < value < 100:
        errors.add(f"{path}.{given[0]}", f"{objective[given[0]]!r} is not between 0 and "
                                         f"{1 if given[0] == 'target' else 100} (exclusive)")
        return ""
    return format(value.normalize(), "f")


def _labels(raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    lists = [key for key, value in raw.items() if not isinstance(value, str | int | float | bool)]
    if lists:
        raise SpecError([Problem(f"metadata.labels.{key}", "a list of values: a Kubernetes "
                                 "label holds one") for key in lists])
    return {str(key): str(value) for key, value in raw.items()}


def _check(manifest: Document) -> None:
    """The manifest is one the operator accepts, its endpoints once filled in."""
    filled = {**manifest, "spec": {**manifest["spec"], "endpoints": [PLACEHOLDER_ENDPOINT]}}
    agreement_from_manifest(filled)
