"""/badge/{namespace}/{agreement}.svg: "availability | 99.97%", coloured by the objective.

Widths are measured per text with Verdana's advance widths at 11 px (what badges use), so
a long value never overflows its box.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from xml.sax.saxutils import escape

from sla_operator.domain.statuspage import PublicAgreement
from sla_operator.statuspage.text import xml_safe

# Advance widths of Verdana 11 px in pixels; other characters count as wide ones.
_WIDTHS = {**dict.fromkeys("0123456789", 7.0), ".": 3.9, ",": 3.9, "%": 11.9, " ": 3.9,
           "a": 6.6, "b": 6.9, "c": 5.7, "d": 6.9, "e": 6.5, "f": 3.8, "g": 6.9, "h": 7.0,
           "i": 3.0, "j": 3.8, "k": 6.5, "l": 3.0, "m": 10.7, "n": 7.0, "o": 6.7, "p": 6.9,
           "q": 6.9, "r": 4.7, "s": 5.7, "t": 4.3, "u": 7.0, "v": 6.5, "w": 9.0, "x": 6.5,
           "y": 6.5, "z": 5.8, "-": 4.6, "/": 4.9}
_DEFAULT_WIDTH = 8.0
_PADDING = 6
COLOURS = {True: "#2e7d32", False: "#c62828", None: "#616161"}  # met, missed, no data


def text_width(text: str) -> float:
    return sum(_WIDTHS.get(char, _DEFAULT_WIDTH) for char in text)


def badge_svg(agreement: PublicAgreement, label: str = "availability") -> bytes:
    value = "no data" if agreement.availability is None else _two_decimals(agreement.availability)
    left = round(text_width(label)) + 2 * _PADDING
    right = round(text_width(value)) + 2 * _PADDING
    width = left + right
    colour = COLOURS[agreement.met]
    title = escape(xml_safe(f"{agreement.service}: {label} {value}, objective {agreement.objective}%"))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{escape(label)}: {escape(value)}"><title>{title}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{_PADDING}" y="14">{escape(label)}</text>'
        f'<text x="{left + _PADDING}" y="14">{escape(value)}</text></g></svg>')
    return svg.encode()


def _two_decimals(percent: str) -> str:
    """Floor, as the figures do: 99.9999 is 99.99%, never a false 100.00%."""
    return f"{Decimal(percent).quantize(Decimal('0.01'), rounding=ROUND_FLOOR)}%"
