"""The http probe: one request (and its redirects), judged by status and body."""

from __future__ import annotations

import asyncio
import codecs
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import regex
from multidict import CIMultiDict
from yarl import URL

from sla_operator.domain.errors import SecretRefused, SpecError
from sla_operator.domain.failure_reasons import FailureReason
from sla_operator.domain.model import HttpProbe
from sla_operator.domain.parse_probes import compile_body_regex
from sla_operator.probes.base import ProbeContext
from sla_operator.probes.certificates import certificate_not_after
from sla_operator.probes.http_wire import HttpResponse
from sla_operator.probes.outcome import ProbeFailure, ProbeOutcome

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
# Credentials (and a Host header set in the spec) are not carried to another origin by a
# redirect, as browsers and curl do.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
SHOWN_PATTERN_CHARS = 60
# A pattern can backtrack for hours on a body of a few kilobytes, and asyncio cannot interrupt
# a running match: bodies are searched in these threads, with the GIL released, and the
# regex module stops a search after this many seconds.
BODY_REGEX_TIME_LIMIT = 1.0
# Each namespace searches at most two bodies at a time (ProbeContext.body_searches), so a
# namespace whose patterns backtrack holds two of these threads, never all of them.
_BODY_SEARCH_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sla-body-regex")


@dataclass
class _Request:
    method: str
    url: URL
    headers: CIMultiDict[str]
    body: bytes | None
    secret_header_names: frozenset[str]

    def follow(self, status: int, location: str) -> _Request:
        """The request a redirect asks for: GET after 303 (and after 301/302 of a POST)."""
        try:
            target = self.url.join(URL(location))
        except ValueError:
            raise ProbeFailure(FailureReason.PROTOCOL, "redirect to an invalid URL") from None
        if target.scheme not in ("http", "https") or not target.raw_host:
            raise ProbeFailure(FailureReason.PROTOCOL,
                               f"redirect to unsupported URL scheme {target.scheme!r}")
        headers = CIMultiDict(self.headers)
        if target.origin() != self.url.origin():
            for name in CREDENTIAL_HEADERS | self.secret_header_names | {"host"}:
                headers.popall(name, None)
        method, body = self.method, self.body
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
        return _Request(method, target, headers, body, self.secret_header_names)


async def probe_http(spec: HttpProbe, context: ProbeContext) -> ProbeOutcome:
    request = await _first_request(spec, context)
    pattern = _compile(spec.body_regex)
    client = context.http_client()
    for _hop in range(MAX_REDIRECTS + 1):
        response = await client.send(
            request.method,
            request.url,
            request.headers,
            request.body,
            verify=not spec.insecure_skip_verify,
            policy=context.policy,
            body_limit=context.max_body_bytes,
        )
        try:
            location = response.headers.get("Location")
            if spec.follow_redirects and response.status in REDIRECT_STATUSES and location:
                request = request.follow(response.status, location)
                continue
            return await _judge(spec, pattern, response, context)
        finally:
            response.close()
    raise ProbeFailure(FailureReason.PROTOCOL, f"more than {MAX_REDIRECTS} redirects")


async def _first_request(spec: HttpProbe, context: ProbeContext) -> _Request:
    url = URL(spec.url)
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise ProbeFailure(FailureReason.PROTOCOL,
                           f"url {spec.url!r} is not an http or https URL with a host")
    headers: CIMultiDict[str] = CIMultiDict()
    secret_names: set[str] = set()
    for header in spec.headers:
        if header.secret is not None:
            try:
                value = await context.resolve_secret(header.secret.name, header.secret.key)
            except SecretRefused as refusal:  # its message says why, and never holds the value
                raise ProbeFailure(FailureReason.POLICY, f"header {header.name}: {refusal}") from None
            except Exception as error:
                raise ProbeFailure(
                    FailureReason.PROTOCOL,
                    f"header {header.name}: cannot read key {header.secret.key!r} of secret "
                    f"{header.secret.name!r} ({type(error).__name__})"
                ) from None
            secret_names.add(header.name.lower())
        else:
            value = header.value or ""
        if "\r" in value or "\n" in value:
            raise ProbeFailure(FailureReason.PROTOCOL,
                               f"header {header.name}: value contains a line break")
        headers.add(header.name, value)
    headers.setdefault("User-Agent", context.user_agent)
    body = spec.body.encode() if spec.body else None
    return _Request(spec.method.upper(), url, headers, body, frozenset(secret_names))


def _compile(body_regex: str | None) -> regex.Pattern[str] | None:
    if not body_regex:
        return None
    try:
        return compile_body_regex(body_regex, "bodyRegex")
    except SpecError as error:
        raise ProbeFailure(FailureReason.BODY, str(error)) from None


async def _body_matches(pattern: regex.Pattern[str], text: str) -> bool:
    """Whether ``pattern`` occurs in ``text``; TimeoutError after BODY_REGEX_TIME_LIMIT."""
    search = partial(pattern.search, text, concurrent=True, timeout=BODY_REGEX_TIME_LIMIT)
    found = await asyncio.get_running_loop().run_in_executor(_BODY_SEARCH_THREADS, search)
    return found is not None


async def _judge(
    spec: HttpProbe,
    pattern: regex.Pattern[str] | None,
    response: HttpResponse,
    context: ProbeContext,
) -> ProbeOutcome:
    not_after = certificate_not_after(response.peer_certificate)
    if not spec.status_ok(response.status):
        expected = ", ".join(map(str, spec.expected_status)) or "2xx"
        raise ProbeFailure(FailureReason.STATUS, f"status {response.status}, expected {expected}",
                           not_after)
    if pattern is not None:
        content = await response.read()
        text = content.decode(_encoding(response.charset), errors="replace")
        try:
            # Searches of one namespace wait for each other, never for another namespace's.
            async with context.body_search_slot():
                matches = await _body_matches(pattern, text)
        except TimeoutError:
            raise ProbeFailure(FailureReason.BODY,
                               f"body regex took longer than {BODY_REGEX_TIME_LIMIT:g}s",
                               not_after) from None
        if not matches:
            raise ProbeFailure(FailureReason.BODY, f"body does not match /{_shown(pattern.pattern)}/",
                               not_after)
    else:
        # The whole (bounded) body is still read: a probe that stops at the headers would
        # miss a server that fails while sending it.
        await response.read()
    reason = f" {response.reason}" if response.reason else ""
    return ProbeOutcome(f"{response.status}{reason}", not_after)


def _encoding(charset: str | None) -> str:
    """The response's charset when Python knows it, else UTF-8."""
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"


def _shown(pattern: str) -> str:
    if len(pattern) <= SHOWN_PATTERN_CHARS:
        return pattern
    return pattern[: SHOWN_PATTERN_CHARS - 1] + "…"
