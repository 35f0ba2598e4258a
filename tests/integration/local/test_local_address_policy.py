"""--deny-cidr as a user sets it: the probe is refused and the forbidden server sees nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from local_support import LocalProcess, agreement, free_port, write_manifests

FORBIDDEN_HOST = "127.0.0.3"


class CountingServer:
    """A TCP server on 127.0.0.3 that counts every connection it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(accept, FORBIDDEN_HOST, self.port)


@pytest.fixture
async def forbidden() -> AsyncIterator[CountingServer]:
    server = CountingServer()
    await server.start()
    yield server
    assert server.server is not None
    server.server.close()
    await server.server.wait_closed()


def guarded(port: int) -> dict[str, object]:
    manifest = agreement("guarded", port)
    manifest["spec"]["endpoints"][0]["http"]["url"] = f"http://{FORBIDDEN_HOST}:{port}/api"
    return manifest


async def test_a_denied_range_is_never_connected_to(
        forbidden: CountingServer, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    write_manifests(manifests / "guarded.yaml", guarded(forbidden.port))
    operator = local().start("--deny-cidr", f"{FORBIDDEN_HOST}/32")

    def refused() -> str | None:
        endpoints = operator.status("guarded").get("endpoints") or [{}]
        message = str(endpoints[0].get("message") or "")
        return message if "denied" in message else None

    message = await operator.wait_for("the probe refused by the policy", refused)
    assert FORBIDDEN_HOST in message
    await operator.wait_for("the endpoint Down", lambda: operator.status("guarded")["endpoints"][0]
                            ["state"] == "Down")
    assert forbidden.connections == 0


async def test_without_the_deny_range_the_same_server_is_probed(
        forbidden: CountingServer, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    write_manifests(manifests / "guarded.yaml", guarded(forbidden.port))
    operator = local().start()
    await operator.wait_for("the endpoint Up",
                            lambda: (operator.status("guarded").get("endpoints") or [{}])[0]
                            .get("state") == "Up")
    assert forbidden.connections > 0
