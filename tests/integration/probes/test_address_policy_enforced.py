"""The address policy end to end: a denied target never sees a connection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from probe_targets import HttpTarget, Probe, RawServer, answer_ok, read_secret

from sla_operator.domain.model import DnsProbe, GrpcProbe, HttpProbe, TcpProbe, TlsProbe
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.policy import AddressPolicy

DENIED = "address 127.0.0.3 denied by policy"


@pytest.fixture
async def denied_server(raw_servers: list[RawServer]) -> RawServer:
    server = await RawServer("127.0.0.3").start(answer_ok)
    raw_servers.append(server)
    return server


@pytest.fixture
async def strict() -> AsyncIterator[ProbeContext]:
    context = ProbeContext(
        policy=AddressPolicy.from_cidrs(deny=["127.0.0.3/32"], allow=[]),
        resolve_secret=read_secret,
    )
    yield context
    await context.aclose()


async def test_the_server_answers_when_the_policy_allows_it(probe: Probe, denied_server: RawServer) -> None:
    result = await probe(HttpProbe(url=f"http://127.0.0.3:{denied_server.port}/"))
    assert result.ok, result.message
    assert denied_server.accepted == 1


@pytest.mark.parametrize("kind", ["http", "tcp", "tls", "grpc", "dns"], ids=lambda kind: f"{kind}-probe")
async def test_a_denied_address_fails_with_the_policy_message_and_no_connection(
    probe: Probe, denied_server: RawServer, strict: ProbeContext, kind: str
) -> None:
    port = denied_server.port
    spec = {
        "http": HttpProbe(url=f"http://127.0.0.3:{port}/"),
        "tcp": TcpProbe(host="127.0.0.3", port=port),
        "tls": TlsProbe(host="127.0.0.3", port=port),
        "grpc": GrpcProbe(host="127.0.0.3", port=port),
        "dns": DnsProbe(name="svc.test", server=f"127.0.0.3:{port}"),
    }[kind]
    result = await probe(spec, 5, strict)
    assert (result.ok, result.message) == (False, DENIED)
    assert denied_server.accepted == 0


async def test_a_redirect_to_a_denied_address_is_not_followed(
    probe: Probe, http_target: HttpTarget, denied_server: RawServer, strict: ProbeContext
) -> None:
    target = f"http://127.0.0.3:{denied_server.port}/"
    result = await probe(HttpProbe(url=http_target.url(f"/redirect?to={target}")), 5, strict)
    assert (result.ok, result.message) == (False, DENIED)
    assert [seen.path for seen in http_target.seen] == ["/redirect"]
    assert denied_server.accepted == 0


async def test_an_allow_list_refuses_everything_outside_it(probe: Probe, http_target: HttpTarget) -> None:
    only_other = ProbeContext(
        policy=AddressPolicy.from_cidrs(deny=[], allow=["127.0.0.2/32"]),
        resolve_secret=read_secret,
    )
    try:
        result = await probe(HttpProbe(url=http_target.url("/ok")), 5, only_other)
    finally:
        await only_other.aclose()
    assert (result.ok, result.message) == (False, "address 127.0.0.1 not in the allowed ranges")
    assert http_target.seen == []
