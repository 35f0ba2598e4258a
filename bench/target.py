"""A fast HTTP target for the benchmark, run as its own process so its CPU is not counted.

It listens on several loopback ports (so that many short connections do not exhaust the
ephemeral ports of one destination), answers every request with "200 ok" and closes.
Usage: python -m bench.target PORTS  -> prints the chosen ports as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class OkProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data
        if b"\r\n\r\n" in self.received and self.transport is not None:
            self.transport.write(RESPONSE)
            self.transport.close()


async def serve(port_count: int) -> None:
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(OkProtocol, "127.0.0.1", 0, backlog=4096) for _ in range(port_count)]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    print(json.dumps({"ports": ports}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8))
