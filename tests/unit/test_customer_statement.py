"""The customer's statement: every line adds up to its totals on a month with every kind of
exclusion, a DST change and an outage across the month's end; each format carries the same
figures, people's text stays inert, the JSON meets its schema and the PDF reads back."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from sla_operator.domain.customer_statement import CustomerStatement, build_statement
from sla_operator.domain.intervals import Interval
from sla_operator.domain.model import (
    Agreement,
    CreditTier,
    Endpoint,
    Exclusion,
    ExclusionReason,
    HttpProbe,
    Impact,
    Incident,
    IncidentState,
    IncidentType,
    IncidentUpdate,
    MaintenanceWindow,
    Severity,
    Window,
)
from sla_operator.statement.formats import canonical_sha256, statement_dict, to_markdown
from sla_operator.statement.html import to_html, to_pdf

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "statement.schema.json").read_text())
OUTPUT = ROOT / "tests" / "output" / "statement"
LONDON = "Europe/London"  # October 2026: the clocks go back on Sunday the 25th, 02:00 BST
OCT = datetime(2026, 9, 30, 23, 0, tzinfo=UTC)  # 1 October 00:00 BST
NOV = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # 1 November 00:00 GMT
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
EVIL = '<script>alert("x")</script> | **bold** [link](http://x)'


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


def incident(name: str, start: datetime, end: datetime | None, **more: object) -> Incident:
    base = Incident(namespace="shop", name=name, agreement="checkout", type=IncidentType.OUTAGE,
                    severity=Severity.P1, title=f"Checkout down ({name})", started_at=start,
                    resolved_at=end, state=IncidentState.RESOLVED)
    return replace(base, **more)  # type: ignore[arg-type]


def excluded(name: str, start: datetime, end: datetime, reason: ExclusionReason,
             by: str) -> Incident:
    return incident(name, start, end, exclusion=Exclusion(reason, f"{reason.value} note"),
                    updates=(IncidentUpdate(start, IncidentState.INVESTIGATING, "failing"),
                             IncidentUpdate(end + timedelta(hours=1), IncidentState.RESOLVED,
                                            f"Excluded from the agreement ({reason.value})",
                                            by=by)))


AGREEMENT = Agreement(
    namespace="shop", name="checkout", service=EVIL, objective=Decimal("99.9"),
    endpoints=(Endpoint("api", HttpProbe("http://127.0.0.1:8099/")),
               Endpoint("bank", HttpProbe("http://127.0.0.1:8098/"), dependency=True)),
    window=Window(time_zone=LONDON), created_at=datetime(2026, 1, 1, tzinfo=UTC),
    credits=(CreditTier(Decimal("99.9"), 10), CreditTier(Decimal("99.0"), 25)))
WINDOW = MaintenanceWindow(namespace="shop", name="db", start=at(25, 0, 30), end=at(25, 2, 30))
INCIDENTS = [
    incident("plain", at(3, 10), at(3, 10, 20), title=EVIL),  # 1200 s counted
    incident("overlapping", at(3, 10, 10), at(3, 10, 30)),  # 600 s its own, 600 s overlap
    excluded("third", at(8, 9), at(8, 9, 30), ExclusionReason.THIRD_PARTY, "ana"),
    excluded("blocked", at(9, 9), at(9, 9, 10), ExclusionReason.BLOCKED, "ben"),
    excluded("other", at(10, 9), at(10, 9, 5), ExclusionReason.OTHER, "cy"),
    incident("bank-down", at(12, 8), at(12, 9), dependency=True, severity=Severity.P4,
             impact=Impact.NONE, endpoints=("bank",)),
    incident("during-bank", at(12, 8, 30), at(12, 9, 30)),  # 1800 s third party, 1800 counted
    incident("in-maintenance", at(25, 1), at(25, 3)),  # the DST night: 5400 s maintenance
    incident("slow", at(14, 9), at(14, 10), type=IncidentType.DEGRADATION,
             impact=Impact.DEGRADED, severity=Severity.P3),
    incident("across-the-end", at(31, 23), datetime(2026, 11, 1, 1, 0, tzinfo=UTC)),
]
GAP = Interval(at(20, 4), at(20, 5))  # the operator was down for an hour


@pytest.fixture(scope="module")
def statement() -> CustomerStatement:
    return build_statement(AGREEMENT, [WINDOW], INCIDENTS, [GAP], "2026-10", NOW)


def test_october_in_london_is_31_days_and_one_hour(statement: CustomerStatement) -> None:
    assert (statement.start, statement.end) == (OCT, NOV)
    assert statement.elapsed_seconds == 31 * 86_400 + 3600
    assert len(statement.days) == 31 and statement.closed


def test_every_line_adds_up_to_the_totals(statement: CustomerStatement) -> None:
    lines = statement.incidents
    for line in lines:
        assert line.counted_seconds + sum(p.seconds for p in line.not_counted) == \
            line.seconds_in_period, line.name
    assert sum(line.counted_seconds for line in lines) == statement.downtime_seconds
    assert sum(p.seconds for line in lines for p in line.not_counted
               if p.reason in ("thirdParty", "blocked", "other")) == statement.excluded_seconds
    assert sum(m.seconds for m in statement.maintenance) == statement.maintenance_seconds
    assert sum(u.seconds for u in statement.unmonitored) == statement.unmonitored_seconds
    eligible = (statement.elapsed_seconds - statement.maintenance_seconds
                - statement.excluded_seconds - statement.unmonitored_seconds)
    assert eligible == statement.eligible_seconds
    exact = Decimal(eligible - statement.downtime_seconds) / eligible * 100
    assert statement.availability == f"{exact.quantize(Decimal('0.0001'), 'ROUND_FLOOR'):.4f}"


def test_each_incident_says_what_was_counted_and_why_not(statement: CustomerStatement) -> None:
    lines = {line.name: line for line in statement.incidents}
    assert lines["plain"].counted_seconds == 1200
    assert [(p.reason, p.seconds) for p in lines["overlapping"].not_counted] == [("overlap", 600)]
    for name, reason, by in (("third", "thirdParty", "ana"), ("blocked", "blocked", "ben"),
                             ("other", "other", "cy")):
        (part,) = lines[name].not_counted
        assert (part.reason, part.by, lines[name].counted_seconds) == (reason, by, 0)
        assert part.at == lines[name].resolved_at + timedelta(hours=1)
    assert [(p.reason, p.seconds) for p in lines["during-bank"].not_counted] == [("thirdParty", 1800)]
    assert lines["during-bank"].counted_seconds == 1800
    assert [p.reason for p in lines["bank-down"].not_counted] == ["dependency"]
    assert [(p.reason, p.seconds) for p in lines["in-maintenance"].not_counted] == [
        ("maintenance", 5400)]  # 01:00-02:30 UTC; the clocks went back at 01:00 UTC
    assert lines["in-maintenance"].counted_seconds == 1800
    assert [p.reason for p in lines["slow"].not_counted] == ["notDowntime"]
    assert lines["across-the-end"].seconds_in_period == 3600  # 23:00-24:00 GMT on the 31st
    assert statement.downtime_seconds == 1200 + 600 + 1800 + 1800 + 3600
    assert statement.unmonitored_seconds == 3600
    assert statement.availability == "99.6625"  # below the first tier, above the second
    assert (statement.met, statement.credit_percent) == (False, 10)


def test_a_worse_month_earns_the_next_tier() -> None:
    worse = [*INCIDENTS, incident("long", at(5, 0), at(5, 8))]
    made = build_statement(AGREEMENT, [WINDOW], worse, [GAP], "2026-10", NOW)
    assert made.availability is not None and Decimal(made.availability) < Decimal("99.0")
    assert (made.met, made.credit_percent) == (False, 25)


def test_the_json_meets_its_schema_and_its_hash(statement: CustomerStatement) -> None:
    document = statement_dict(statement)
    jsonschema.validate(document, SCHEMA)
    assert document["sha256"] == canonical_sha256(document)
    altered = {**document, "availability": "100.0000"}
    assert canonical_sha256(altered) != document["sha256"]
    totals = document["totals"]
    assert sum(i["countedSeconds"] for i in document["incidents"]) == totals["downtimeSeconds"]


def test_markdown_shows_the_figures_and_keeps_peoples_text_inert(
        statement: CustomerStatement) -> None:
    text = to_markdown(statement)
    assert "| Availability | " + f"{statement.availability}% |" in text
    assert "| Service credit | 10% of the period's fees |" in text
    assert "<script>" not in text and "\\<script\\>" in text and "\\*\\*bold\\*\\*" in text
    assert "by ana at 2026-10-08T10:30:00Z" in text


def test_html_is_self_contained_escaped_and_draws_the_days(statement: CustomerStatement) -> None:
    page = to_html(statement)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<rect ") == 31
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "").replace(
        "http://x", "")  # no asset is fetched from anywhere
    assert "<link" not in page and "src=" not in page
    assert "across-the-end" in page and "by ana" in page


def test_the_pdf_shows_the_service_the_figures_and_the_incidents(
        statement: CustomerStatement) -> None:
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.fail("pdftotext/pdftoppm missing: run scripts/install-pdf.sh (make test does)")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    pdf = OUTPUT / "statement.pdf"
    pdf.write_bytes(to_pdf(statement))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert '<script>alert("x")</script>' in text  # the service's name, as text
    assert f"{statement.availability}%" in text and "99.9%" in text
    for name in ("plain", "during-bank", "in-maintenance", "across-the-end"):
        assert name in text
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf), str(OUTPUT / "page")], check=True)
    assert sorted(p.name for p in OUTPUT.glob("page-*.png"))
