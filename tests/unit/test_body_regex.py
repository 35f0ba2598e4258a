"""bodyRegex is checked with the engine the http probe matches with, and its size is bounded."""

from __future__ import annotations

from typing import Any

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_operator.domain.errors import SpecError
from sla_operator.domain.parse import agreement_from_manifest
from sla_operator.domain.parse_probes import (
    MAX_BODY_REGEX_ELEMENTS,
    MAX_BODY_REGEX_LENGTH,
    compile_body_regex,
)

PATH = "spec.endpoints[0].http.bodyRegex"


def manifest(body_regex: str) -> dict[str, Any]:
    return {"metadata": {"name": "shop", "namespace": "demo"},
            "spec": {"objective": "99.9", "endpoints": [
                {"name": "api", "http": {"url": "http://127.0.0.1:9/", "bodyRegex": body_regex}}]}}


def refusal(body_regex: str) -> str:
    with pytest.raises(SpecError) as caught:
        agreement_from_manifest(manifest(body_regex))
    problems = {p.path: p.message for p in caught.value.problems}
    assert list(problems) == [PATH]
    return problems[PATH]


def test_a_pattern_only_the_regex_module_understands_is_accepted() -> None:
    # \p{...} is not Python's re syntax; the probe's matcher supports it, so parsing does too.
    agreement = agreement_from_manifest(manifest(r'"name":"\p{Lu}\p{Ll}+"'))
    probe = agreement.endpoints[0].probe
    assert getattr(probe, "body_regex", None) == r'"name":"\p{Lu}\p{Ll}+"'


def test_a_malformed_pattern_is_refused_at_its_path() -> None:
    assert refusal('"status":("ok"').startswith("not a valid regular expression: missing )")


@pytest.mark.parametrize("pattern", ["(a{2000}){2000}", "(?:a{4000}){4000}", "a{1000000}",
                                     "(?:(?:ab|cd){200}){200}", "(?x)(a{2000} #(\n){2000}"])
def test_a_short_pattern_whose_repeats_would_take_gigabytes_to_compile_is_refused(pattern: str) -> None:
    assert f"repeats expand to more than {MAX_BODY_REGEX_ELEMENTS} elements" in refusal(pattern)


@pytest.mark.parametrize("pattern", [
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ".{0,1000000}",  # only the minimum count is copied
    "(?:a{100}){100}",
])
def test_ordinary_counted_repeats_are_accepted(pattern: str) -> None:
    assert compile_body_regex(pattern, PATH).pattern == pattern


def test_a_pattern_longer_than_the_limit_is_refused() -> None:
    message = refusal("x" * (MAX_BODY_REGEX_LENGTH + 1))
    assert message == (f"is {MAX_BODY_REGEX_LENGTH + 1} characters long; "
                       f"at most {MAX_BODY_REGEX_LENGTH} are allowed")


def test_deeply_nested_groups_are_refused_not_a_crash() -> None:
    assert refusal("(" * 600 + "a" + ")" * 600).endswith("groups are nested too deeply")


def test_flags_that_exclude_each_other_are_refused_not_a_crash() -> None:
    assert "mutually incompatible" in refusal("(?au)a")


def test_a_refused_pattern_is_refused_again_when_checked_twice() -> None:
    for _ in range(2):
        with pytest.raises(SpecError):
            compile_body_regex("(a{2000}){2000}", PATH)


@settings(max_examples=300)
@given(st.text(alphabet="()[]{}?*+|\\^$.,:=!<>#-aAdpPLVux0123456789 \n", max_size=40))
def test_any_text_compiles_or_is_refused_as_a_spec_error(pattern: str) -> None:
    try:
        compiled = compile_body_regex(pattern, PATH)
    except SpecError as refused:
        assert [p.path for p in refused.problems] == [PATH]
    else:
        assert isinstance(compiled, regex.Pattern)
