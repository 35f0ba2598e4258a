"""The CRD schemas of crds/*.yaml applied to manifests read from files, as the API server would.

The CRDs ship inside the package (``make crds`` copies them to ``sla_operator/crds/``), so an
installed sla-operator validates exactly like a source checkout. Unknown fields are errors, as
with ``kubectl apply`` (strict field validation): a typo such as ``timout`` must not pass silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    """Every schema problem of ``manifest`` (its status is the operator's and is not checked)."""
    schema = crd_schemas()[kind]
    document = {k: v for k, v in manifest.items() if k != "status"}
    validator = jsonschema.Draft7Validator(schema)
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
