"""The tcp probe: a connection is opened to an admitted address and closed again."""

from __future__ import annotations

import asyncio

from sla_operator.domain.model import TcpProbe
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.outcome import ProbeOutcome
from sla_operator.probes.policy import AddressPolicy, resolve_allowed


async def open_admitted(
    host: str, port: int, policy: AddressPolicy
) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the first admitted address of ``host`` that accepts one."""
    last_error: OSError | None = None
    for address in await resolve_allowed(host, port, policy):
        try:
            reader, writer = await asyncio.open_connection(address, port)
        except OSError as error:
            last_error = error
            continue
        return address, reader, writer
    assert last_error is not None
    try:
        raise last_error
    finally:
        last_error = None  # this frame, in the error's traceback, must not hold it: a cycle


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        # The peer may reset a connection we are closing anyway; the probe already succeeded.
        return


async def probe_tcp(spec: TcpProbe, context: ProbeContext) -> ProbeOutcome:
    address, _reader, writer = await open_admitted(spec.host, spec.port, context.policy)
    await close_quietly(writer)
    return ProbeOutcome(f"connected to {_join(address, spec.port)}")


def _join(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
