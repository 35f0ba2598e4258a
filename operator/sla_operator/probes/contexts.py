"""The probes' context of each namespace, and the Secrets their requests send."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from sla_operator.domain.errors import SecretRefused
from sla_operator.probes.base import ProbeContext, user_agent
from sla_operator.probes.policy import AddressPolicy, NamespaceRule, policy_for

SECRET_CACHE_SECONDS = 60.0


class SecretSource(Protocol):
    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        """One value of a Secret in ``namespace``; raises SecretRefused saying why not."""


class ProbeContexts:
    """One ProbeContext per namespace: the administrators' policy for it, the User-Agent of
    this process's location, and Secrets read at most once a minute (probes must not hammer
    the API server)."""

    def __init__(self, source: SecretSource, policy: AddressPolicy,
                 rules: Sequence[NamespaceRule], location: str | None,
                 clock: Callable[[], datetime]) -> None:
        self.source, self.policy, self.rules = source, policy, rules
        self.user_agent, self.clock = user_agent(location), clock
        self.contexts: dict[str, ProbeContext] = {}
        self._secrets: dict[tuple[str, str, str], tuple[str | SecretRefused, datetime]] = {}

    def of(self, namespace: str) -> ProbeContext:
        context = self.contexts.get(namespace)
        if context is None:
            async def resolve(name: str, key: str) -> str:
                return await self.secret(namespace, name, key)
            context = ProbeContext(policy=policy_for(self.policy, self.rules, namespace),
                                   resolve_secret=resolve, user_agent=self.user_agent)
            self.contexts[namespace] = context
        return context

    async def secret(self, namespace: str, name: str, key: str) -> str:
        """A Secret value, read at most once a minute. A refusal (no such Secret or key, not
        labelled for probes, forbidden) is remembered as long, and says why in words that
        never include the value."""
        cached = self._secrets.get((namespace, name, key))
        now = self.clock()
        if cached is None or (now - cached[1]).total_seconds() >= SECRET_CACHE_SECONDS:
            try:
                cached = (await self.source.read_secret(namespace, name, key), now)
            except SecretRefused as refusal:
                cached = (refusal, now)
            self._secrets[(namespace, name, key)] = cached
        if isinstance(cached[0], SecretRefused):
            raise cached[0]
        return cached[0]
