"""An incident a person excluded from the agreement says so wherever the page shows it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer
from status_snapshots import agreement, incident, snapshot

from sla_operator.domain.model import Exclusion, ExclusionReason
from sla_operator.domain.views import Snapshot
from sla_operator.statuspage import status_app

SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "status.schema.json").read_text())


def world() -> Snapshot:
    card = replace(incident("card-network-outage", title="Card payments failing"),
                   exclusion=Exclusion(ExclusionReason.THIRD_PARTY, "provider ticket 4711"))
    blocked = replace(incident("blocked-by-customer", title="Traffic blocked"),
                      exclusion=Exclusion(ExclusionReason.BLOCKED))
    counted = incident("payments-api-1", title="Payments API is down")
    return snapshot(agreement("payments-api"), incidents=(card, blocked, counted))


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(status_app(world))) as test_client:
        yield test_client


async def test_the_page_says_an_excluded_incident_does_not_count_against_the_agreement(
        client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/")).text()
    card = html[html.index("Card payments failing"):]
    assert "not counted against the agreement: a third party&#39;s outage" in card[:1500]
    blocked = html[html.index("Traffic blocked"):]
    assert "not counted against the agreement: blocked data communications" in blocked[:1500]
    counted = html[html.index("Payments API is down"):]
    assert "not counted" not in counted[:counted.index("</article>")]
    assert "provider ticket 4711" not in html  # the note is the team's own


async def test_the_json_and_the_feed_carry_the_exclusion(client: TestClient[Any, Any]) -> None:
    document = await (await client.get("/api/v1/status")).json()
    jsonschema.validate(document, SCHEMA)
    excluded = {i["name"]: i["excluded"] for i in document["incidents"]}
    assert excluded == {"card-network-outage": "thirdParty", "blocked-by-customer": "blocked",
                        "payments-api-1": None}
    feed = feedparser.parse(await (await client.get("/feed.atom")).text())
    texts = {e.id.rsplit("/", 1)[-1]: e.content[0].value for e in feed.entries}
    assert "not counted against the agreement: a third party's outage" in texts["card-network-outage"]
    assert "not counted" not in texts["payments-api-1"]
