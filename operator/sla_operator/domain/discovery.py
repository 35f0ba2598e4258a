"""Discovery: an annotated Service or Ingress adds an http endpoint to an agreement of its
namespace (docs/API.md, "Discovery").

    metadata:
      annotations:
        sla.dev/agreement: payments-api     # the agreement, in the same namespace
        sla.dev/endpoint-path: /healthz     # optional (Service: /, Ingress: its rule's path)
        sla.dev/expect-status: "200,204"    # optional (default: any 2xx)

A Service is probed at ``http://NAME.NAMESPACE.svc:PORT/PATH`` (its first port; https when
that port is 443 or named https), an Ingress at ``http(s)://HOST/PATH`` of its first rule with
a host (https when its tls lists the host). The endpoint is named ``svc-NAME`` or
``ing-NAME`` and marked discovered; it obeys the address policy like any other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import Agreement, Endpoint, HttpProbe

AGREEMENT: Final = "sla.dev/agreement"
ENDPOINT_PATH: Final = "sla.dev/endpoint-path"
EXPECT_STATUS: Final = "sla.dev/expect-status"
_STATUS = re.compile(r"^[1-5][0-9][0-9]$")


@dataclass(frozen=True)
class Discovered:
    """The endpoint an annotated object adds, and the agreement (same namespace) it joins."""

    namespace: str
    agreement: str
    endpoint: Endpoint


def discovered_from(kind: str, manifest: Mapping[str, Any]) -> Discovered | None:
    """What an annotated ``kind`` ("Service" or "Ingress") adds; None without the annotation.
    SpecError (naming the annotation or field) when it cannot be probed as annotated."""
    meta = manifest.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    agreement = annotations.get(AGREEMENT)
    if not agreement:
        return None
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace") or "default")
    spec = manifest.get("spec") or {}
    path = annotations.get(ENDPOINT_PATH)
    if path is not None and not str(path).startswith("/"):
        raise SpecError.at(f"metadata.annotations[{ENDPOINT_PATH}]",
                           f"{path!r} must be a path starting with /")
    if kind == "Service":
        url, prefix = _service_url(name, namespace, spec, path), "svc"
    else:
        url, prefix = _ingress_url(spec, path), "ing"
    probe = HttpProbe(url=url, expected_status=_expected(annotations.get(EXPECT_STATUS)))
    endpoint_name = f"{prefix}-{name}"[:63].rstrip("-")
    return Discovered(namespace, str(agreement),
                      Endpoint(name=endpoint_name, probe=probe, discovered=True))


def _service_url(name: str, namespace: str, spec: Mapping[str, Any], path: object) -> str:
    ports = spec.get("ports") or []
    if not ports or not isinstance(ports[0], Mapping) or not ports[0].get("port"):
        raise SpecError.at("spec.ports", "a discovered Service needs a port to probe")
    port = int(ports[0]["port"])
    https = port == 443 or str(ports[0].get("name", "")).lower() == "https"
    return f"{'https' if https else 'http'}://{name}.{namespace}.svc:{port}{path or '/'}"


def _ingress_url(spec: Mapping[str, Any], path: object) -> str:
    for rule in spec.get("rules") or []:
        host = rule.get("host") if isinstance(rule, Mapping) else None
        if not host:
            continue
        paths = ((rule.get("http") or {}).get("paths") or [{}])
        rule_path = paths[0].get("path") if isinstance(paths[0], Mapping) else None
        tls_hosts = {h for tls in spec.get("tls") or [] for h in (tls.get("hosts") or [])}
        scheme = "https" if host in tls_hosts else "http"
        return f"{scheme}://{host}{path or rule_path or '/'}"
    raise SpecError.at("spec.rules", "a discovered Ingress needs a rule with a host to probe")


def _expected(raw: object) -> tuple[int, ...]:
    if raw is None or str(raw).strip() == "":
        return ()
    codes = [part.strip() for part in str(raw).split(",")]
    if not all(_STATUS.match(code) for code in codes):
        raise SpecError.at(f"metadata.annotations[{EXPECT_STATUS}]",
                           f"{raw!r} is not a list of HTTP status codes such as \"200,204\"")
    return tuple(int(code) for code in codes)


def with_discovered(agreement: Agreement, found: Mapping[str, Endpoint]) -> Agreement:
    """``agreement`` with the endpoints discovered for it (by the name of their source)
    after its own; one whose name an endpoint of the spec already has is left out."""
    taken = {endpoint.name for endpoint in agreement.endpoints}
    extra = []
    for source in sorted(found):
        endpoint = found[source]
        if endpoint.name not in taken:
            taken.add(endpoint.name)
            extra.append(endpoint)
    if not extra:
        return agreement
    return replace(agreement, endpoints=(*agreement.endpoints, *extra))
