"""The status page's routes through aiohttp's test client: content, headers, caching, leaks."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer
from status_snapshots import NOW, agreement, incident, snapshot, window

from sla_operator.domain.model import IncidentState, IncidentUpdate, State
from sla_operator.domain.views import Snapshot
from sla_operator.statuspage import status_app
from sla_operator.statuspage.app import RENDERER

SCHEMA = json.loads((Path(__file__).parents[3] / "docs" / "status.schema.json").read_text())
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'


class Source:
    """Stands in for the engine: the page reads whatever snapshot this holds."""

    def __init__(self, current: Snapshot) -> None:
        self.current = current

    def __call__(self) -> Snapshot:
        return self.current


def world() -> Snapshot:
    return snapshot(
        agreement("payments-api", group="Payments"),
        agreement("internal-db", public=False, service="Internal DB at db.corp.example"),
        incidents=(
            incident("payments-api-1", title=HOSTILE, updates=(
                IncidentUpdate(NOW - timedelta(hours=2), IncidentState.INVESTIGATING, HOSTILE),
                IncidentUpdate(NOW - timedelta(hours=1), IncidentState.IDENTIFIED, "fix on its way"))),
            incident("internal-db-1", "internal-db", title="internal outage"),
        ),
        windows=(window("db-upgrade"), window("internal-window", agreements=("internal-db",))))


@pytest.fixture
def source() -> Source:
    return Source(world())


@pytest.fixture
async def client(source: Source) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(status_app(source))) as test_client:
        yield test_client


ROUTES = ["/", "/api/v1/status", "/feed.atom", "/badge/payments/payments-api.svg",
          "/static/page.css", "/static/favicon.svg", "/healthz"]


@pytest.mark.parametrize("path", ROUTES)
async def test_every_route_answers_with_the_security_headers(client: TestClient[Any, Any],
                                                               path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "script-src" not in csp and "default-src 'none'" in csp  # no script at all
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(("path", "kind"), [
    ("/", "text/html"), ("/api/v1/status", "application/json"),
    ("/feed.atom", "application/atom+xml"), ("/badge/payments/payments-api.svg", "image/svg+xml"),
    ("/static/page.css", "text/css")])
async def test_each_document_has_its_content_type(client: TestClient[Any, Any], path: str,
                                                  kind: str) -> None:
    response = await client.get(path)
    assert response.headers["Content-Type"].split(";")[0] == kind


@pytest.mark.parametrize("path", ["/nope", "/api/v1/status/x", "/badge/payments/internal-db.svg",
                                  "/badge/payments/missing.svg", "/badge/x.svg",
                                  "/static/../metrics", "/<script>"])
async def test_unknown_paths_get_a_plain_404(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("text/plain")
    assert await response.text() == "404 Not Found\n"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_json_follows_the_contract_and_its_schema(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/v1/status")
    document = await response.json()
    jsonschema.validate(document, SCHEMA)
    assert document["state"] == "Up"
    [shown] = document["agreements"]
    assert (shown["namespace"], shown["name"], shown["group"]) == ("payments", "payments-api", "Payments")
    assert len(shown["daily"]) == 90 and shown["daily"][-1]["date"] == NOW.date().isoformat()
    [public] = document["incidents"]
    assert public["title"] == HOSTILE and len(public["updates"]) == 2
    assert [w["name"] for w in document["maintenance"]] == ["db-upgrade"]


@pytest.mark.parametrize("path", ROUTES[:4])
async def test_nothing_internal_is_served(client: TestClient[Any, Any], path: str) -> None:
    body = await (await client.get(path)).text()
    for secret in ("internal", "db.corp.example", "Internal DB"):
        assert secret not in body


async def test_people_s_text_is_escaped_in_html(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/")).text()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "onerror=&#34;alert(2)&#34;" in html


async def test_the_page_shows_bars_incidents_and_maintenance(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/")).text()
    assert html.count('class="bar ') == 90
    assert "fix on its way" in html and "Database upgrade" in html
    assert '<time datetime="2026-11-27T01:30:00Z">' in html
    assert "<script" not in html.replace("&lt;script", "") and " style=" not in html


async def test_etag_and_304(client: TestClient[Any, Any]) -> None:
    first = await client.get("/api/v1/status")
    etag = first.headers["ETag"]
    again = await client.get("/api/v1/status", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    assert again.headers["ETag"] == etag
    other = await client.get("/api/v1/status", headers={"If-None-Match": '"something-else"'})
    assert other.status == 200


async def test_gzip_when_asked(client: TestClient[Any, Any]) -> None:
    plain = await client.get("/", headers={"Accept-Encoding": "identity"}, auto_decompress=False)
    assert "Content-Encoding" not in plain.headers
    zipped = await client.get("/", headers={"Accept-Encoding": "gzip, br"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await zipped.read()) == await plain.read()
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert "Accept-Encoding" in zipped.headers["Vary"]


async def test_render_once_per_change(client: TestClient[Any, Any], source: Source) -> None:
    renderer = client.app[RENDERER]  # type: ignore[index]
    # Resolved: an open incident's duration (and so the page) changes with every snapshot.
    resolved = tuple(replace(i, resolved_at=NOW) for i in source.current.incidents)
    source.current = replace(source.current, incidents=resolved)
    await client.get("/")
    rendered = renderer.renders
    source.current = replace(source.current, taken_at=NOW + timedelta(seconds=1))  # same content
    for path in ("/", "/api/v1/status", "/feed.atom"):
        await client.get(path)
    assert renderer.renders == rendered
    etag = (await client.get("/")).headers["ETag"]
    down = replace(source.current.agreements[0], state=State.DOWN)
    source.current = replace(source.current, agreements=(down, *source.current.agreements[1:]))
    response = await client.get("/", headers={"If-None-Match": etag})
    assert response.status == 200 and renderer.renders == rendered + 1
    assert "Service outage" in await response.text()


async def test_the_feed_has_an_entry_per_incident_and_maintenance(client: TestClient[Any, Any]) -> None:
    feed = feedparser.parse(await (await client.get("/feed.atom")).read())
    assert not feed.bozo
    ids = [entry.id for entry in feed.entries]
    assert "tag:sla.dev,2026:incident/payments/payments-api-1" in ids
    assert any(i.startswith("tag:sla.dev,2026:maintenance/payments/db-upgrade/") for i in ids)
    entry = next(e for e in feed.entries if "incident" in e.id)
    assert HOSTILE in entry.content[0].value and "fix on its way" in entry.content[0].value
    assert entry.content[0].type == "text/plain"


async def test_the_badge_measures_its_text_and_shows_the_objective(client: TestClient[Any, Any],
                                                                   source: Source) -> None:
    svg = await (await client.get("/badge/payments/payments-api.svg")).text()
    assert "99.97%" in svg and "#2e7d32" in svg  # met: green
    missed = replace(source.current.agreements[0], period=replace(
        source.current.agreements[0].period, availability=0.99, met=False))  # type: ignore[arg-type]
    source.current = replace(source.current, agreements=(missed,))
    svg = await (await client.get("/badge/payments/payments-api.svg")).text()
    assert "99.00%" in svg and "#c62828" in svg


async def test_huge_and_non_latin_names_render(source: Source, client: TestClient[Any, Any]) -> None:
    name = "Платежи 支付 " + "W" * 2000
    control = "title with a \x00 nul and \x1b escape"
    source.current = snapshot(agreement(service=name, group="グループ " * 50),
                              incidents=(incident("x", title=control),))
    for path in ("/", "/api/v1/status", "/feed.atom", "/badge/payments/payments-api.svg"):
        assert (await client.get(path)).status == 200
    assert not feedparser.parse(await (await client.get("/feed.atom")).read()).bozo
    assert name in await (await client.get("/")).text()


def test_the_json_assembled_from_parts_is_the_whole_document_encoded() -> None:
    from sla_operator.domain.statuspage import build_status_page
    from sla_operator.statuspage.api import (
        agreement_document,
        encode,
        incident_document,
        status_document,
        status_json,
    )

    page = build_status_page(world())
    assembled = status_json(page, lambda a: encode(agreement_document(a)),
                            lambda i: encode(incident_document(i)))
    assert json.loads(assembled) == status_document(page)
    assert assembled == encode(status_document(page)).encode()


@pytest.mark.parametrize("accept", ["gzip;q=0", "gzip; q=0.000, identity", "identity, *;q=0",
                                    "br, deflate", "gzip;q=0.5, identity;q=1"])
async def test_no_gzip_for_a_client_that_refuses_or_prefers_less(
        client: TestClient[Any, Any], accept: str) -> None:
    plain = await client.get("/", headers={"Accept-Encoding": "identity"}, auto_decompress=False)
    answer = await client.get("/", headers={"Accept-Encoding": accept}, auto_decompress=False)
    assert "Content-Encoding" not in answer.headers, accept
    assert await answer.read() == await plain.read()
    assert answer.headers["ETag"] == plain.headers["ETag"]


@pytest.mark.parametrize("accept", ["gzip;q=1", "GZIP;Q=0.5, identity;q=0.5", "x-gzip", "*",
                                    "br;q=1, *;q=0.3"])
async def test_gzip_for_any_positive_weight(client: TestClient[Any, Any], accept: str) -> None:
    answer = await client.get("/", headers={"Accept-Encoding": accept}, auto_decompress=False)
    assert answer.headers.get("Content-Encoding") == "gzip", accept


async def test_html_ids_are_unique_for_names_that_join_alike(source: Source,
                                                             client: TestClient[Any, Any]) -> None:
    """Namespace a-b with name c and namespace a with name b-c once made the same id; the feed's
    links point at the incident each entry is about."""
    source.current = snapshot(
        agreement("c", namespace="a-b"), agreement("b-c", namespace="a"),
        agreement("x", namespace="a"), agreement("x-title", namespace="a"),
        incidents=(incident("c", "c", namespace="a-b"), incident("b-c", "b-c", namespace="a")))
    html = await (await client.get("/")).text()
    ids = re.findall(r'\sid="([^"]*)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    labelled = re.findall(r'aria-labelledby="([^"]*)"', html)
    assert labelled and set(labelled) <= set(ids)
    feed = feedparser.parse(await (await client.get("/feed.atom")).read())
    anchors = {entry.id.rsplit("incident/", 1)[1]: entry.link.split("#", 1)[1]
               for entry in feed.entries if "incident/" in entry.id}
    assert set(anchors) == {"a-b/c", "a/b-c"}
    assert len(set(anchors.values())) == 2 and set(anchors.values()) <= set(ids)
