"""Whether to answer with gzip: Accept-Encoding read with its weights (RFC 9110, 12.5.3).

A coding with ``q=0`` is refused, ``*`` stands for every coding the header does not name, and
the identity coding is acceptable unless refused (``identity;q=0``, or ``*;q=0`` without an
entry of its own). gzip is sent when its weight is above zero and at least that of identity.
"""

from __future__ import annotations

import re

_WEIGHT = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")


def gzip_wanted(header: str | None) -> bool:
    weights: dict[str, float] = {}
    for item in (header or "").split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        coding = coding.lower()
        if not coding:
            continue
        weight = 1.0
        for parameter in parameters:
            name, _, value = (text.strip() for text in parameter.partition("="))
            if name.lower() == "q":
                # A weight that is not one is taken as a refusal: no guessing what was meant.
                weight = float(value) if _WEIGHT.fullmatch(value) else 0.0
        if coding == "x-gzip":
            coding = "gzip"
        weights[coding] = min(weights.get(coding, weight), weight)
    rest = weights.get("*")
    gzip = weights.get("gzip", rest if rest is not None else 0.0)
    identity = weights.get("identity", rest if rest is not None else 1.0)
    return gzip > 0 and gzip >= identity
