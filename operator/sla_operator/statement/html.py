"""The statement as one printable HTML page (no external assets, daily bars as inline SVG),
and as PDF: WeasyPrint renders the same page."""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from sla_operator.domain.customer_statement import CustomerStatement, DayLine
from sla_operator.domain.records import format_time
from sla_operator.statement.formats import seconds_text, statement_dict, who

_ENVIRONMENT = Environment(loader=PackageLoader("sla_operator.statement", "templates"),
                           autoescape=select_autoescape(default=True, default_for_string=True),
                           trim_blocks=True, lstrip_blocks=True)
BAR_WIDTH, BAR_GAP, BAR_HEIGHT = 14, 3, 40


def _bar_colour(day: DayLine, objective: str) -> str:
    if day.availability is None:
        return "#c9ccd1"  # no data: grey, never green
    value = float(day.availability)
    if value >= float(objective):
        return "#2f9e44"
    return "#f08c00" if value >= float(objective) - 1 else "#e03131"


def _time(moment: datetime | None) -> str:
    return (format_time(moment) or "").replace("T", " ").replace("Z", " UTC")


def to_html(statement: CustomerStatement) -> str:
    bars = [{"x": i * (BAR_WIDTH + BAR_GAP), "colour": _bar_colour(d, statement.objective),
             "title": f"{d.date.isoformat()}: "
                      + ("no data" if d.availability is None else f"{d.availability}%")}
            for i, d in enumerate(statement.days)]
    template = _ENVIRONMENT.get_template("statement.html")
    return template.render(
        s=statement, bars=bars, bar_width=BAR_WIDTH, bar_height=BAR_HEIGHT,
        svg_width=max(1, len(bars) * (BAR_WIDTH + BAR_GAP) - BAR_GAP),
        time=_time, seconds=seconds_text, who=who,
        sha256=statement_dict(statement)["sha256"])


def to_pdf(statement: CustomerStatement) -> bytes:
    """The HTML page as PDF. Nothing is fetched: the page has no external asset, and any
    reference that slipped in is refused rather than looked up."""
    from weasyprint import HTML  # type: ignore[import-untyped]

    def refuse(url: str) -> dict[str, object]:
        raise ValueError(f"the statement fetches nothing ({url})")

    pdf: bytes = HTML(string=to_html(statement), url_fetcher=refuse).write_pdf()
    return pdf
