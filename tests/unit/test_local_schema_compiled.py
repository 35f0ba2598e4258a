"""The compiled schema check accepts exactly what jsonschema accepts, for every kind."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla_operator.local.files import ManifestLoader
from sla_operator.local.schema import _compiled, compile_check, crd_schemas, validate

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("ServiceLevelAgreement", "MaintenanceWindow", "Incident")


def examples() -> list[dict[str, Any]]:
    found = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for document in yaml.load_all(path.read_text(), Loader=ManifestLoader):
            if isinstance(document, dict) and document.get("kind") in KINDS:
                found.append(document)
    return found


EXAMPLES = examples()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**6, max_value=10**6)
    | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["5m", "30s", "P1", "Up", "http://x", "99.9", "", "UTC", "0 3 * * SUN"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "url", "http", "tcp", "interval", "x", "spec", "port"]),
        inner, max_size=3),
    max_leaves=8)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An example manifest with a few values replaced, removed or added anywhere in it."""
    document = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    kind = document["kind"]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(paths(document)[1:]))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "remove":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "name", "timeout", "type"]))] = draw(JSON)
        else:
            parent[path[-1]] = draw(JSON)
    return kind, document


def test_every_kind_compiles_and_the_examples_cover_them() -> None:
    assert {d["kind"] for d in EXAMPLES} == set(KINDS)
    for kind in KINDS:
        assert _compiled(kind) is not None


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_the_compiled_check_agrees_with_jsonschema(case: tuple[str, dict[str, Any]]) -> None:
    kind, document = case
    document = {k: v for k, v in document.items() if k != "status"}
    expected = jsonschema.Draft7Validator(crd_schemas()[kind]).is_valid(document)
    assert compile_check(crd_schemas()[kind])(document) is expected
    assert (validate(kind, document) == []) is expected


@pytest.mark.parametrize(("schema", "good", "bad"), [
    ({"type": "integer"}, [1, 2.0], [True, 1.5, "1"]),
    ({"type": ["string", "null"]}, ["a", None], [1, []]),
    ({"enum": ["a", 1]}, ["a", 1, 1.0], [True, "b"]),
    ({"minimum": 0, "maximum": 10}, [0, 10, "x", float("nan")], [-1, 10.5]),
    ({"pattern": "^a"}, ["ab", 3], ["ba"]),
    ({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, [{"a": 1}, {"b": 1}], [{}, {"a": 1, "b": 2}]),
    ({"not": {"required": ["a"]}}, [{}], [{"a": 1}]),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": False},
     [{"a": "x"}, {}], [{"a": 1}, {"b": 1}]),
    ({"items": {"type": "string"}, "minItems": 1, "maxItems": 2}, [["a"], ["a", "b"]], [[], [1], ["a"] * 3]),
])
def test_each_keyword_as_jsonschema_reads_it(schema: dict[str, Any], good: list[Any],
                                             bad: list[Any]) -> None:
    check = compile_check(schema)
    for value in good:
        assert check(value) and jsonschema.Draft7Validator(schema).is_valid(value), value
    for value in bad:
        assert not check(value) and not jsonschema.Draft7Validator(schema).is_valid(value), value


def test_a_keyword_the_check_does_not_know_leaves_the_schema_to_jsonschema() -> None:
    with pytest.raises(Exception, match="patternProperties"):
        compile_check({"patternProperties": {"^x": {}}})
