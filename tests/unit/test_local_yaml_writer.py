"""The state files' YAML writer: whatever it writes reads back as the document it was given."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_mock import MockerFixture

from sla_operator.local import files
from sla_operator.local.files import ManifestLoader, dump_yaml

# Mostly printable ASCII (the direct writer's ground), some of anything (PyYAML's).
TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12) | st.text(
    max_size=6) | st.sampled_from(["true", "no", "null", "~", "12", "0.5", "1e3", ".nan", "- a", "a: b",
                                  "a #b", "2026-11-26T04:20:00Z", "2026-11-26", "'q'", '"q"', "x:",
                                  "@at", "*ref", "&anchor", "!tag", "%d", "|", ">", "? k", "", " "])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
DOCUMENTS = st.dictionaries(TEXT, st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=25), max_size=5)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(DOCUMENTS)
def test_every_document_reads_back_as_written(document: dict[str, Any]) -> None:
    assert yaml.load(dump_yaml(document), Loader=yaml.SafeLoader) == document


def a_status() -> dict[str, Any]:
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": "shop", "namespace": "demo"},
            "status": {"state": "Up", "message": "Up: 2 endpoint(s) answering",
                       "lastEvaluated": "2026-11-26T04:20:00Z", "observedGeneration": 3,
                       "currentPeriod": {"availability": "99.9731", "downtimeSeconds": 697.5},
                       "endpoints": [{"name": "api", "state": "Up", "latencyMs": 41,
                                      "message": "200 OK", "dependency": False}],
                       "conditions": [], "openIncidents": [], "unmonitored": [],
                       "daily": [{"date": "2026-11-25", "availability": None}]}}


def test_a_status_is_written_without_pyyaml_and_reads_back_with_times_as_strings(
        mocker: MockerFixture) -> None:
    mocker.patch.object(files.yaml, "dump", side_effect=AssertionError("handed to PyYAML"))
    text = dump_yaml(a_status())
    assert yaml.load(text, Loader=ManifestLoader) == a_status()
    assert 'lastEvaluated: "2026-11-26T04:20:00Z"' in text
    assert "  - name: api\n    state: Up\n" in text  # block style, as people read and edit it


@pytest.mark.parametrize("value", ["two\nlines", "café", 1e300, float("inf")])
def test_what_the_direct_writer_leaves_to_pyyaml_still_reads_back(value: object) -> None:
    document = {"status": {"message": value}}
    assert yaml.load(dump_yaml(document), Loader=ManifestLoader) == document


def test_remembered_list_entries_keep_their_types_and_indentation() -> None:
    entries = [{"n": 1}, {"n": True}, {"n": "1"}, {"n": None}]
    text = dump_yaml({"days": entries, "nested": {"days": entries}})
    assert text == ('days:\n- n: 1\n- n: true\n- n: "1"\n- n: null\n'
                    'nested:\n  days:\n  - n: 1\n  - n: true\n  - n: "1"\n  - n: null\n')
    assert dump_yaml({"days": entries, "nested": {"days": entries}}) == text


def forget() -> None:
    """The writer as at start: no string, entry plan or entry remembered."""
    files._TEXTS.clear()
    files._PLANS.clear()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(DOCUMENTS, DOCUMENTS)
def test_a_document_is_written_alike_whatever_was_written_before(
        document: dict[str, Any], before: dict[str, Any]) -> None:
    forget()
    fresh = dump_yaml(document)
    forget()
    dump_yaml(before)  # fills the memory with entries that may equal some of ``document``'s
    assert dump_yaml(document) == fresh
    assert dump_yaml(document) == fresh


ENTRY_VALUES = st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(
    [0.0, -0.0, 1.0, 0.5, "0", "1", "true", "null", "", "a b", "x", "2026-11-26"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.lists(ENTRY_VALUES, min_size=3, max_size=3), min_size=1, max_size=12))
def test_list_entries_with_equal_values_of_other_types_are_written_each_as_its_own(
        rows: list[list[Any]]) -> None:
    # 1, True and 1.0 are equal in Python, as are 0, False, 0.0 and -0.0: entries of one list
    # sharing keys must never borrow each other's text.
    entries = [dict(zip("abc", row, strict=True)) for row in rows]
    document = {"list": entries, "again": entries}
    text = dump_yaml(document)
    read = yaml.load(text, Loader=ManifestLoader)
    assert read == document
    for written, entry in zip(read["list"] + read["again"], entries + entries, strict=True):
        assert [(type(v), repr(v)) for v in written.values()] == [
            (type(v), repr(v)) for v in entry.values()]


def test_floats_zero_and_negative_zero_in_list_entries_read_back_with_their_sign() -> None:
    entries = [{"v": 0.0}, {"v": -0.0}, {"v": 0.0}, {"v": -0.0}, {"v": 0}, {"v": False}]
    text = dump_yaml({"days": entries})
    assert text == "days:\n- v: 0.0\n- v: -0.0\n- v: 0.0\n- v: -0.0\n- v: 0\n- v: false\n"


def test_strings_that_need_quoting_in_list_entries_are_quoted() -> None:
    values = ["true", "no", "null", "~", "12", "0.5", "1e3", ".nan", "- a", "a: b", "a #b",
              "2026-11-26T04:20:00Z", "2026-11-26", "'q'", '"q"', "x:", "@at", "*ref", "&anchor",
              "!tag", "%d", "|", ">", "? k", "", " ", "back\\slash", "{a}", "[b]", "a}b{"]
    entries = [{"message": value, "n": index} for index, value in enumerate(values)]
    for _ in range(2):  # written anew, then from what is remembered
        read = yaml.load(dump_yaml({"entries": entries}), Loader=ManifestLoader)
        assert read == {"entries": entries}


def test_keys_with_braces_are_written_as_they_are() -> None:
    entries = [{"{a}": 1, "b}": "{}", "{": "x"}] * 2
    entry = '- "{a}": 1\n  "b}": "{}"\n  "{": x\n'
    assert dump_yaml({"l": entries}) == "l:\n" + entry * 2


@pytest.mark.parametrize("value", ["two\nlines", "café", "tab\there", "bell\x07"])
def test_a_list_entry_with_text_the_direct_writer_leaves_to_pyyaml_still_reads_back(
        value: str) -> None:
    document = {"endpoints": [{"name": "api", "message": "200 OK"},
                              {"name": "web", "message": value}]}
    assert yaml.load(dump_yaml(document), Loader=ManifestLoader) == document


def test_list_entries_with_nested_values_are_written_in_block_style() -> None:
    document = {"l": [{"a": [], "b": {}}, {"a": [1, 2], "b": {"c": None}}, {"a": [], "b": {}}]}
    text = dump_yaml(document)
    assert text == ("l:\n- a: []\n  b: {}\n- a:\n  - 1\n  - 2\n  b:\n    c: null\n"
                    "- a: []\n  b: {}\n")
    assert yaml.load(text, Loader=ManifestLoader) == document


def test_entries_that_change_every_time_are_not_remembered_and_repeated_ones_are() -> None:
    forget()
    changing = [{"name": f"e{i}", "lastProbeTime": f"2026-11-26T04:{i // 60 % 60:02d}:{i % 60:02d}Z",
                 "latencyMs": i} for i in range(3 * files.MEMO_WINDOW)]
    repeated = [{"date": "2026-11-25", "downtimeSeconds": 0}] * (3 * files.MEMO_WINDOW)
    document = {"endpoints": changing, "daily": repeated}
    text = dump_yaml(document)
    assert yaml.load(text, Loader=ManifestLoader) == document
    plans = {keys[1][0]: plan for keys, plan in files._PLANS.items() if plan is not None}
    assert plans["name"].memo is None and plans["name"].paused  # stopped remembering
    assert plans["date"].memo is not None and len(plans["date"].memo) == 1
    assert dump_yaml(document) == text


def test_a_memory_of_strings_cleared_when_full_changes_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    forget()
    document = {"status": a_status()["status"], "more": [f"text {i}" for i in range(40)]}
    fresh = dump_yaml(document)
    monkeypatch.setattr(files, "_TEXTS_SIZE", 4)
    forget()
    assert dump_yaml(document) == fresh
    assert len(files._TEXTS) <= 4
