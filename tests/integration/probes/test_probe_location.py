"""HTTP probes say which location they come from, so a service's logs show it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from probe_targets import Probe, RawServer

from sla_operator.domain.model import Header, HttpProbe
from sla_operator.probes.base import ProbeContext, user_agent


async def _serve(raw_servers: list[RawServer], heads: list[bytes]) -> str:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    server = await RawServer("127.0.0.1").start(answer)
    raw_servers.append(server)
    return f"http://127.0.0.1:{server.port}/"


def _user_agents(heads: list[bytes]) -> list[str]:
    return [line.split(": ", 1)[1] for head in heads for line in head.decode().split("\r\n")
            if line.lower().startswith("user-agent:")]


async def test_a_probe_from_a_location_names_it_in_its_user_agent(
        probe: Probe, raw_servers: list[RawServer], context: ProbeContext) -> None:
    heads: list[bytes] = []
    url = await _serve(raw_servers, heads)
    located = replace(context, user_agent=user_agent("eu-west"))
    try:
        assert (await probe(HttpProbe(url=url), probe_context=located)).ok
    finally:
        await located.aclose()
    assert (await probe(HttpProbe(url=url))).ok
    [from_location, plain] = _user_agents(heads)
    assert from_location.startswith("sla-operator/") and from_location.endswith(
        " (location eu-west)")
    assert plain == from_location.removesuffix(" (location eu-west)")


async def test_a_user_agent_the_probe_sets_itself_is_kept(
        probe: Probe, raw_servers: list[RawServer], context: ProbeContext) -> None:
    heads: list[bytes] = []
    url = await _serve(raw_servers, heads)
    located = replace(context, user_agent=user_agent("eu-west"))
    try:
        spec = HttpProbe(url=url, headers=(Header(name="User-Agent", value="shop-check"),))
        assert (await probe(spec, probe_context=located)).ok
    finally:
        await located.aclose()
    assert _user_agents(heads) == ["shop-check"]
