"""A tiny authoritative DNS server over UDP for dns probe tests."""

from __future__ import annotations

import asyncio
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class DnsZone(asyncio.DatagramProtocol):
    """A tiny authoritative UDP DNS server: known records, NXDOMAIN otherwise.

    Names under ``silent.test.`` get no reply at all, to exercise timeouts; names under
    ``broken.test.`` get SERVFAIL.
    """

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records
        self.queries = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queries += 1
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().lower()
        if name.endswith("silent.test."):
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        type_name = dns.rdatatype.to_text(question.rdtype)
        if name.endswith("broken.test."):
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, type_name) in self.records:
            rrset = dns.rrset.from_text_list(name, 60, "IN", type_name, self.records[(name, type_name)])
            response.answer.append(rrset)
        elif not any(known == name for known, _type in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)
