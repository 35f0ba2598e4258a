"""The CRD schemas of crds/*.yaml applied to manifests read from files, as the API server would.

The CRDs ship inside the package (``make crds`` copies them to ``sla_operator/crds/``), so an
installed sla-operator validates exactly like a source checkout. Unknown fields are errors, as
with ``kubectl apply`` (strict field validation): a typo such as ``timout`` must not pass silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError

from sla_operator.domain.errors import Problem

Schema = dict[str, Any]


@cache
def crd_schemas() -> dict[str, Schema]:
    """kind -> JSON Schema of the served version, from the CRDs inside the package."""
    schemas: dict[str, Schema] = {}
    for entry in sorted(resources.files("sla_operator").joinpath("crds").iterdir(),
                        key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        crd = yaml.safe_load(entry.read_text(encoding="utf-8"))
        served = [v for v in crd["spec"]["versions"] if v.get("served", True)]
        schemas[crd["spec"]["names"]["kind"]] = to_json_schema(served[0]["schema"]["openAPIV3Schema"])
    return schemas


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3 (Kubernetes flavour) to JSON Schema: nullable, x-kubernetes-*, strict objects."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    translated = {key: to_json_schema(value) for key, value in node.items()
                  if not key.startswith("x-kubernetes-") and key != "nullable"}
    if node.get("nullable") and "type" in node:
        translated["type"] = [node["type"], "null"]
    preserves = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and "additionalProperties" not in node and not preserves:
        translated["additionalProperties"] = False
    return translated


def validate(kind: str, manifest: Mapping[str, Any]) -> list[Problem]:
    """Every schema problem of ``manifest`` (its status is the operator's and is not checked).

    A valid manifest (the usual case) is accepted by a check compiled from the schema once;
    only an invalid one goes through jsonschema, which says what is wrong and where."""
    document = {k: v for k, v in manifest.items() if k != "status"}
    check = _compiled(kind)
    if check is not None and check(document):
        return []
    validator = _validator(kind)
    errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    # One error per missing required field repeats the whole list: keep each problem once.
    return list(dict.fromkeys(problem for error in errors for problem in _problems(error)))


def field_path(parts: Iterable[str | int]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _problems(error: ValidationError) -> Iterator[Problem]:
    path = field_path(error.absolute_path)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = sorted(schema.get("properties") or {})
        for name in sorted(set(error.instance) - set(allowed)):
            yield Problem(_join(path, name), f"unknown field; allowed here: {', '.join(allowed)}")
        return
    if error.validator == "required" and isinstance(error.instance, Mapping):
        for name in error.validator_value:
            if name not in error.instance:
                yield Problem(_join(path, name), "is required")
        return
    yield Problem(path or "(document)", _message(error, schema))


def _message(error: ValidationError, schema: Mapping[str, Any]) -> str:
    value = error.instance
    if error.validator == "enum":
        return f"{value!r} is not allowed; use one of: {', '.join(map(str, schema['enum']))}"
    if error.validator == "pattern":
        description = str(schema.get("description") or "").strip()
        return (f"{value!r} is not valid: {description}" if description
                else f"{value!r} does not match {schema['pattern']}")
    if error.validator == "oneOf":
        choices = _choices(schema["oneOf"])
        if choices:
            return f"set exactly one of: {' | '.join(choices)}"
    if error.validator == "type":
        return f"{value!r} is not of type {error.validator_value}"
    return str(error.message)


def _choices(branches: Sequence[Mapping[str, Any]]) -> list[str]:
    """The alternatives of a oneOf made of `required` lists (e.g. http | tcp, start+end | schedule)."""
    choices = []
    for branch in branches:
        required = branch.get("required")
        if not required:
            return []
        choices.append("+".join(required))
    return choices


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(crd_schemas()[kind])


# ------------------------------------------------------------ the compiled check

Check = Callable[[Any], bool]
_IGNORED = frozenset({"description", "format", "default", "title", "example", "examples"})
"""Keywords that never make a document invalid (Draft7Validator asserts no format)."""


class _Unsupported(Exception):
    """A keyword the compiled check does not know: jsonschema checks every document."""


@cache
def _compiled(kind: str) -> Check | None:
    try:
        return compile_check(crd_schemas()[kind])
    except _Unsupported:
        return None


def compile_check(schema: Any) -> Check:
    """Whether a document is valid against ``schema`` (JSON Schema draft 7, the keywords the
    CRDs use), as ``jsonschema.Draft7Validator(schema).is_valid`` says, many times faster:
    the schema is walked once, here, not at every document. Unknown keywords raise."""
    if schema is True or schema == {}:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, Mapping):
        raise _Unsupported(repr(schema))
    checks: list[Check] = []
    for keyword, value in schema.items():
        if keyword in _IGNORED:
            continue
        make = _KEYWORDS.get(keyword)
        if make is None:
            raise _Unsupported(keyword)
        made = make(value, schema)
        if made is not None:
            checks.append(made)
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    every = tuple(checks)
    return lambda instance: all(check(instance) for check in every)


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _is_number(value: Any) -> bool:
    return type(value) is not bool and isinstance(value, (int, float))


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: type(v) is not bool and (
        isinstance(v, int) or (isinstance(v, float) and v.is_integer())),
}


def _type(value: Any, _: Mapping[str, Any]) -> Check:
    names = [value] if isinstance(value, str) else list(value)
    if any(name not in _TYPES for name in names):
        raise _Unsupported(f"type {value!r}")
    accepted = tuple(_TYPES[name] for name in names)
    if len(accepted) == 1:
        return accepted[0]
    return lambda instance: any(check(instance) for check in accepted)


def _properties(value: Mapping[str, Any], _: Mapping[str, Any]) -> Check:
    compiled = {name: compile_check(sub) for name, sub in value.items()}

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        for name, item in instance.items():
            sub = compiled.get(name)
            if sub is not None and not sub(item):
                return False
        return True
    return check


def _additional(value: Any, schema: Mapping[str, Any]) -> Check | None:
    if "patternProperties" in schema:
        raise _Unsupported("patternProperties")
    known = frozenset(schema.get("properties") or ())
    if value is False:
        return lambda instance: not isinstance(instance, dict) or known.issuperset(instance)
    extra = compile_check(value)
    if extra is _always:
        return None
    return lambda instance: not isinstance(instance, dict) or all(
        extra(item) for name, item in instance.items() if name not in known)


def _required(value: Sequence[str], _: Mapping[str, Any]) -> Check:
    names = tuple(value)
    return lambda instance: not isinstance(instance, dict) or all(n in instance for n in names)


def _same(one: Any, other: Any) -> bool:
    """JSON equality as jsonschema has it: true and 1 differ, 1 and 1.0 do not."""
    if isinstance(one, bool) or isinstance(other, bool):
        return type(one) is type(other) and one == other
    if isinstance(one, dict) and isinstance(other, dict):
        return one.keys() == other.keys() and all(_same(one[k], other[k]) for k in one)
    if isinstance(one, list) and isinstance(other, list):
        return len(one) == len(other) and all(_same(a, b) for a, b in zip(one, other, strict=True))
    if isinstance(one, str) != isinstance(other, str):
        return False
    return bool(one == other)


def _enum(value: Sequence[Any], _: Mapping[str, Any]) -> Check:
    allowed = tuple(value)
    return lambda instance: any(_same(instance, choice) for choice in allowed)


def _items(value: Any, _: Mapping[str, Any]) -> Check:
    if not isinstance(value, Mapping):
        raise _Unsupported("items as a list")
    each = compile_check(value)
    return lambda instance: not isinstance(instance, list) or all(each(i) for i in instance)


def _pattern(value: str, _: Mapping[str, Any]) -> Check:
    search = re.compile(value).search
    return lambda instance: not isinstance(instance, str) or search(instance) is not None


def _bounded(measure: Callable[[Any], bool], size: Callable[[Any], float],
             test: Callable[[float], bool]) -> Check:
    return lambda instance: not measure(instance) or test(size(instance))


def _itself(value: Any) -> Any:
    return value


def _length_of(kind: type) -> Callable[[Any], bool]:
    return lambda instance: isinstance(instance, kind)


_KEYWORDS: dict[str, Callable[[Any, Mapping[str, Any]], Check | None]] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "enum": _enum,
    "items": _items,
    "pattern": _pattern,
    "minLength": lambda n, _: _bounded(_length_of(str), len, lambda size: size >= n),
    "maxLength": lambda n, _: _bounded(_length_of(str), len, lambda size: size <= n),
    "minItems": lambda n, _: _bounded(_length_of(list), len, lambda size: size >= n),
    "maxItems": lambda n, _: _bounded(_length_of(list), len, lambda size: size <= n),
    # As jsonschema words them: a number below the minimum fails (NaN is below nothing).
    "minimum": lambda n, _: _bounded(_is_number, _itself, lambda value: not value < n),
    "maximum": lambda n, _: _bounded(_is_number, _itself, lambda value: not value > n),
    "oneOf": lambda branches, _: _count_valid(branches, lambda valid: valid == 1),
    "anyOf": lambda branches, _: _count_valid(branches, lambda valid: valid >= 1),
    "allOf": lambda branches, _: _count_valid(branches, lambda valid: valid == len(branches)),
    "not": lambda sub, _: (lambda inner: lambda instance: not inner(instance))(compile_check(sub)),
}


def _count_valid(branches: Sequence[Any], verdict: Callable[[int], bool]) -> Check:
    compiled = tuple(compile_check(branch) for branch in branches)
    return lambda instance: verdict(sum(1 for check in compiled if check(instance)))
