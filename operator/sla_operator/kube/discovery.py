"""Discovery in a cluster (`run --discover`): Services and Ingresses annotated
``sla.dev/agreement`` add endpoints to that agreement of their namespace, and take them away
again when the annotation (or the object) goes (domain/discovery.py says which endpoint).

The watches of Services and Ingresses are registered only with ``--discover``, so without it
the operator needs no permission on them (chart: ``discovery.enabled``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from sla_operator.domain.discovery import Discovered, discovered_from, with_discovered
from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import Agreement, Endpoint
from sla_operator.engine import Engine
from sla_operator.store.base import Key

log = logging.getLogger("sla_operator.discovery")


class Discoveries:
    """The endpoints annotated objects add, by agreement, and each agreement as its spec says
    (so that one can be handed to the engine again with what was discovered since)."""

    def __init__(self) -> None:
        self.found: dict[Key, dict[str, Endpoint]] = {}  # agreement -> source -> endpoint
        self.joined: dict[str, Key] = {}  # source ("Service/ns/name") -> its agreement
        self.specs: dict[Key, Agreement] = {}

    def agreement(self, agreement: Agreement) -> Agreement:
        """``agreement`` (as parsed from its spec) with what was discovered for it."""
        self.specs[agreement.key] = agreement
        return with_discovered(agreement, self.found.get(agreement.key, {}))

    def update(self, source: str, discovered: Discovered | None) -> set[Key]:
        """Record what ``source`` adds now (None: nothing); the agreements that changed."""
        changed: set[Key] = set()
        before = self.joined.pop(source, None)
        if before is not None:
            self.found.get(before, {}).pop(source, None)
            changed.add(before)
        if discovered is not None:
            key = (discovered.namespace, discovered.agreement)
            self.found.setdefault(key, {})[source] = discovered.endpoint
            self.joined[source] = key
            changed.add(key)
        return changed


DISCOVERIES = Discoveries()
"""The process's discoveries: empty (and every agreement as its spec says) unless enabled."""


def enable() -> None:
    """Watch Services and Ingresses (before kopf runs); without it nothing is discovered."""
    kopf.on.event("v1", "services")(service_event)
    kopf.on.event("networking.k8s.io", "v1", "ingresses")(ingress_event)


async def service_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    take_in(memo["engine"], "Service", event)


async def ingress_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    take_in(memo["engine"], "Ingress", event)


def take_in(engine: Engine, kind: str, event: Mapping[str, Any]) -> None:
    """Record what one watch event of a Service or Ingress adds or takes away, and hand every
    agreement that changed to the engine again."""
    body = event["object"]
    meta = body.get("metadata") or {}
    source = f"{kind}/{meta.get('namespace')}/{meta.get('name')}"
    discovered = None
    if event.get("type") != "DELETED" and not meta.get("deletionTimestamp"):
        try:
            discovered = discovered_from(kind, body)
        except SpecError as error:
            log.warning("%s: not discovered: %s", source, error)
    for key in DISCOVERIES.update(source, discovered):
        spec = DISCOVERIES.specs.get(key)
        if spec is not None and (key in engine.agreements or key in engine.foreign):
            engine.upsert_agreement(DISCOVERIES.agreement(spec))
            log.info("agreement %s/%s: %s %s", *key, source,
                     "discovered" if discovered is not None else "no longer discovered")
