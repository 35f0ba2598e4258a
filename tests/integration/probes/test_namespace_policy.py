"""The administrators' probe policy, end to end: an agreement's namespace decides which
ranges its probes may reach (127.0.0.3 stands for a cluster-internal address)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from probe_targets import HttpTarget, Probe, RawServer, answer_ok

from sla_operator.domain.model import HttpProbe, TcpProbe
from sla_operator.engine import Engine, EngineSettings
from sla_operator.local.store import LocalStore
from sla_operator.probes.policy import AddressPolicy
from sla_operator.probes.policy_file import parse_policy, read_policy_file

POLICY = parse_policy({"rules": [
    {"namespaces": ["monitoring"], "allow": ["127.0.0.0/8"]},
    {"namespaces": ["team-*"], "allow": ["127.0.0.1/32"]},
    {"namespaces": ["*"], "deny": ["127.0.0.0/8"]},
]})


@pytest.fixture
async def internal(raw_servers: list[RawServer]) -> RawServer:
    server = await RawServer("127.0.0.3").start(answer_ok)
    raw_servers.append(server)
    return server


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    made = Engine(LocalStore(tmp_path), EngineSettings(policy=AddressPolicy(),
                                                        namespace_rules=POLICY))
    yield made
    for context in made._probe_contexts.contexts.values():
        await context.aclose()


async def test_a_namespace_without_the_right_never_reaches_the_range(
        probe: Probe, engine: Engine, internal: RawServer) -> None:
    result = await probe(TcpProbe(host="127.0.0.3", port=internal.port), 5,
                         engine._context("tenant-a"))
    assert (result.ok, result.message) == (False, "address 127.0.0.3 denied by policy")
    assert internal.accepted == 0


async def test_a_namespace_with_the_right_reaches_it(
        probe: Probe, engine: Engine, internal: RawServer) -> None:
    result = await probe(TcpProbe(host="127.0.0.3", port=internal.port), 5,
                         engine._context("monitoring"))
    assert result.ok, result.message
    assert internal.accepted == 1


async def test_a_narrow_allow_list_also_holds_on_redirects(
        probe: Probe, engine: Engine, http_target: HttpTarget, internal: RawServer) -> None:
    context = engine._context("team-payments")
    assert (await probe(HttpProbe(url=http_target.url("/ok")), 5, context)).ok
    away = http_target.url(f"/redirect?to=http://127.0.0.3:{internal.port}/")
    result = await probe(HttpProbe(url=away), 5, context)
    assert (result.ok, result.message) == (
        False, "address 127.0.0.3 not in the ranges namespace team-payments may probe")
    assert internal.accepted == 0


@pytest.mark.parametrize(("document", "message"), [
    ({"rule": []}, "rules: expected a list"),
    ({"rules": [{"namespaces": []}]}, r"rules\[0\].namespaces: expected a non-empty list"),
    ({"rules": [{"namespaces": ["a"], "allow": ["10.0.0.0/33"]}]}, r"rules\[0\].allow\[0\]: invalid CIDR"),
    ({"rules": [{"namespaces": ["a"], "permit": []}]}, r"rules\[0\].permit: unknown field"),
])
def test_a_bad_policy_names_the_field(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_policy(document)


def test_the_example_policy_reads() -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "probe-policy"
    rules = read_policy_file(example / "probe-policy.yaml")
    assert [r.namespaces for r in rules] == [("monitoring",), ("team-*",), ("*",)]
