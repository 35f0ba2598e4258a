"""The probe part of an endpoint: http, tcp, dns, grpc or tls, checked field by field."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache, partial
from typing import Any
from urllib.parse import urlsplit

import regex

from sla_operator.domain import model as m
from sla_operator.domain.durations import parse_duration
from sla_operator.domain.errors import SpecError
from sla_operator.domain.fields import Collector, integer, nonempty_string

PROBE_KINDS = ("http", "tcp", "dns", "grpc", "tls")

# bodyRegex is matched with the regex module, whose searches a timeout can stop. Compiling
# copies a repeated part once per minimum count, so 16 characters such as (a{2000}){2000}
# take a gigabyte and seconds; sizes are checked first, on that module's own parse tree (it
# has no public parser, hence the import by name).
MAX_BODY_REGEX_LENGTH = 10_000
MAX_BODY_REGEX_ELEMENTS = 20_000
_regex_parser: Any = importlib.import_module("regex._regex_core")


def parse_probe(kind: str, raw: Mapping[str, Any], path: str) -> m.ProbeSpec:
    if kind == "http":
        return _http(raw, path)
    port_path = f"{path}.port"
    if kind == "tcp":
        return m.TcpProbe(nonempty_string(raw.get("host"), f"{path}.host"),
                          integer(raw.get("port"), port_path, 1, 65535))
    if kind == "dns":
        return m.DnsProbe(name=nonempty_string(raw.get("name"), f"{path}.name"),
                          type=str(raw.get("type", "A")).upper(),
                          server=raw.get("server") or None,
                          expect=tuple(str(v) for v in raw.get("expect") or ()))
    if kind == "grpc":
        return m.GrpcProbe(host=nonempty_string(raw.get("host"), f"{path}.host"),
                           port=integer(raw.get("port"), port_path, 1, 65535),
                           service=str(raw.get("service") or ""),
                           tls=bool(raw.get("tls", False)),
                           insecure_skip_verify=bool(raw.get("insecureSkipVerify", False)))
    return m.TlsProbe(host=nonempty_string(raw.get("host"), f"{path}.host"),
                      port=integer(raw.get("port", 443), port_path, 1, 65535),
                      server_name=raw.get("serverName") or None,
                      insecure_skip_verify=bool(raw.get("insecureSkipVerify", False)),
                      certificate_expiry_warning=_expiry(raw, path))


def _expiry(raw: Mapping[str, Any], path: str) -> timedelta | None:
    value = raw.get("certificateExpiryWarning")
    return None if value is None else parse_duration(value, f"{path}.certificateExpiryWarning")


def _http(raw: Mapping[str, Any], path: str) -> m.HttpProbe:
    errors = Collector()
    url = errors.run(lambda: _url(raw.get("url"), f"{path}.url"), "")
    body_regex = raw.get("bodyRegex") or None
    if body_regex is not None:
        errors.run(lambda: compile_body_regex(str(body_regex), f"{path}.bodyRegex"), None)
    statuses = tuple(errors.run(partial(integer, s, f"{path}.expectedStatus[{i}]", 100, 599), 0)
                     for i, s in enumerate(raw.get("expectedStatus") or ()))
    headers = tuple(errors.run(partial(_header, h, f"{path}.headers[{i}]"), None)
                    for i, h in enumerate(raw.get("headers") or ()))
    expiry = errors.run(lambda: _expiry(raw, path), None)
    errors.raise_if_any()
    return m.HttpProbe(
        url=url,
        method=str(raw.get("method", "GET")).upper(),
        headers=tuple(h for h in headers if h is not None),
        body=str(raw.get("body") or ""),
        expected_status=statuses,
        body_regex=body_regex,
        follow_redirects=bool(raw.get("followRedirects", True)),
        insecure_skip_verify=bool(raw.get("insecureSkipVerify", False)),
        certificate_expiry_warning=expiry,
    )


def _url(value: object, path: str) -> str:
    url = nonempty_string(value, path)
    message = f"{url!r} must be an absolute http:// or https:// URL"
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a malformed IPv6 literal or a port out of range
        raise SpecError.at(path, message) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise SpecError.at(path, message)
    return url


def _header(raw: Mapping[str, Any], path: str) -> m.Header:
    name = nonempty_string(raw.get("name"), f"{path}.name")
    secret = ((raw.get("valueFrom") or {}).get("secretKeyRef")) or None
    if (raw.get("value") is None) == (secret is None):
        raise SpecError.at(path, "needs exactly one of value or valueFrom.secretKeyRef")
    if secret is not None:
        reference = f"{path}.valueFrom.secretKeyRef"
        return m.Header(name, secret=m.SecretRef(nonempty_string(secret.get("name"), f"{reference}.name"),
                                                 nonempty_string(secret.get("key"), f"{reference}.key")))
    return m.Header(name, value=str(raw["value"]))


@lru_cache(maxsize=256)
def compile_body_regex(pattern: str, path: str) -> regex.Pattern[str]:
    """``pattern`` compiled as the http probe matches it, or a SpecError at ``path``."""
    if len(pattern) > MAX_BODY_REGEX_LENGTH:
        raise SpecError.at(path, f"is {len(pattern)} characters long; at most "
                                 f"{MAX_BODY_REGEX_LENGTH} are allowed")
    try:
        too_big = _expanded_elements(pattern) > MAX_BODY_REGEX_ELEMENTS
        compiled = None if too_big else regex.compile(pattern)
    except (regex.error, ValueError) as error:  # ValueError: flags that exclude each other
        raise SpecError.at(path, f"not a valid regular expression: {error}") from None
    except RecursionError:
        raise SpecError.at(path, "not a valid regular expression: groups are nested too deeply") from None
    if compiled is None:
        raise SpecError.at(path, f"its repeats expand to more than {MAX_BODY_REGEX_ELEMENTS} "
                                 "elements (each {n} or {n,m} copies what it repeats n times); "
                                 "use smaller minimum counts, e.g. {0,m} or +")
    return compiled


def _parse_tree(pattern: str) -> Any:
    """The regex module's parse of ``pattern``, done as its compile() does it."""
    flags = 0
    while True:
        source = _regex_parser.Source(pattern)
        info = _regex_parser.Info(flags, source.char_type, {})
        source.ignore_space = bool(info.flags & regex.VERBOSE)
        try:
            return _regex_parser._parse_pattern(source, info)
        except _regex_parser._UnscopedFlagSet:  # a global flag found late: parse again with it
            flags = info.global_flags


def _expanded_elements(pattern: str) -> int:
    """Parse-tree nodes once each repeat is copied its minimum count of times.

    Counting stops just past the limit, so the work is bounded whatever the counts are.
    """
    total = 0
    pending = [(_parse_tree(pattern), 1)]
    while pending and total <= MAX_BODY_REGEX_ELEMENTS:
        node, copies = pending.pop()
        total += copies
        inner = copies * max(1, getattr(node, "min_count", 1) or 1)
        for value in vars(node).values():
            children = value if isinstance(value, list | tuple) else (value,)
            pending.extend((child, inner) for child in children
                           if isinstance(child, _regex_parser.RegexBase))
    return total
