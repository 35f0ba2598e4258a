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


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(DOCUMENTS, DOCUMENTS)
def test_a_document_is_written_alike_whatever_was_written_before(
        document: dict[str, Any], before: dict[str, Any]) -> None:
    files._ENTRY_MEMO.clear()
    fresh = dump_yaml(document)
    files._ENTRY_MEMO.clear()
    dump_yaml(before)  # fills the memory with entries that may equal some of ``document``'s
    assert dump_yaml(document) == fresh
    assert dump_yaml(document) == fresh
