"""The http probe against a real aiohttp server and raw TCP servers misbehaving on purpose."""

from __future__ import annotations

from dataclasses import replace

from probe_targets import (
    HttpTarget,
    Probe,
    RawServer,
    answer_garbage,
    never_answer,
    reset_mid_response,
    serve_http,
)

from sla_operator.domain.model import Header, HttpProbe, SecretRef
from sla_operator.probes.base import ProbeContext


async def test_a_2xx_answer_is_a_success_with_status_and_reason(
    probe: Probe, http_target: HttpTarget
) -> None:
    result = await probe(HttpProbe(url=http_target.url("/ok")))
    assert result.ok
    assert result.message == "200 OK"
    assert result.latency_seconds > 0
    assert result.certificate_not_after is None


async def test_a_hostname_target_is_resolved_and_probed(probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=f"http://localhost:{http_target.port}/ok"))
    assert result.ok, result.message
    assert http_target.seen[-1].headers["Host"] == f"localhost:{http_target.port}"


async def test_a_refused_connection_fails_with_connection_refused(probe: Probe, free_port: int) -> None:
    result = await probe(HttpProbe(url=f"http://127.0.0.1:{free_port}/"))
    assert not result.ok
    assert result.message == "connection refused"


async def test_a_server_that_never_answers_times_out(probe: Probe, raw_servers: list[RawServer]) -> None:
    server = await RawServer("127.0.0.1").start(never_answer)
    raw_servers.append(server)
    result = await probe(HttpProbe(url=f"http://127.0.0.1:{server.port}/"), timeout=0.3)
    assert not result.ok
    assert result.message == "timeout after 300ms"
    assert server.accepted == 1


async def test_a_handler_that_hangs_times_out(probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=http_target.url("/hang")), timeout=0.3)
    assert result.message == "timeout after 300ms"


async def test_a_body_dripping_forever_times_out(probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=http_target.url("/drip")), timeout=0.4)
    assert not result.ok
    assert result.message == "timeout after 400ms"


async def test_a_connection_reset_mid_response_fails(probe: Probe, raw_servers: list[RawServer]) -> None:
    server = await RawServer("127.0.0.1").start(reset_mid_response)
    raw_servers.append(server)
    result = await probe(HttpProbe(url=f"http://127.0.0.1:{server.port}/"))
    assert not result.ok
    assert result.message in (
        "connection lost while reading the response body",
        "connection reset",
    )


async def test_a_server_speaking_something_else_than_http_fails(
    probe: Probe, raw_servers: list[RawServer]
) -> None:
    server = await RawServer("127.0.0.1").start(answer_garbage)
    raw_servers.append(server)
    result = await probe(HttpProbe(url=f"http://127.0.0.1:{server.port}/"))
    assert not result.ok
    assert result.message == "invalid HTTP response"


async def test_an_unexpected_status_fails_and_says_what_was_expected(
    probe: Probe, http_target: HttpTarget
) -> None:
    default = await probe(HttpProbe(url=http_target.url("/status/503")))
    explicit = await probe(HttpProbe(url=http_target.url("/ok"), expected_status=(201, 204)))
    assert (default.ok, default.message) == (False, "status 503, expected 2xx")
    assert (explicit.ok, explicit.message) == (False, "status 200, expected 201, 204")


async def test_an_expected_non_2xx_status_is_a_success(probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=http_target.url("/status/418"), expected_status=(418,)))
    assert result.ok


async def test_the_body_must_match_the_regex(probe: Probe, http_target: HttpTarget) -> None:
    matching = await probe(HttpProbe(url=http_target.url("/ok"), body_regex='"status":"ok"'))
    other = await probe(HttpProbe(url=http_target.url("/ok"), body_regex='"status":"degraded"'))
    assert matching.ok
    assert (other.ok, other.message) == (False, 'body does not match /"status":"degraded"/')


async def test_an_oversize_body_is_cut_at_the_bound_and_still_evaluated(
    probe: Probe, http_target: HttpTarget, context: ProbeContext
) -> None:
    small = replace(context, max_body_bytes=1024)
    try:
        head = await probe(HttpProbe(url=http_target.url("/big"), body_regex="^HEAD"), 5, small)
        tail = await probe(HttpProbe(url=http_target.url("/big"), body_regex="TAIL$"), 5, small)
        unbounded = await probe(HttpProbe(url=http_target.url("/big"), body_regex="TAIL$"))
    finally:
        await small.aclose()
    assert head.ok
    assert (tail.ok, tail.message) == (False, "body does not match /TAIL$/")
    assert not unbounded.ok  # the default 1 MiB bound also stops before the 2 MiB tail


async def test_redirects_are_followed_when_asked(probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=http_target.url("/redirect?to=/ok"), body_regex="ok"))
    assert result.ok
    assert [seen.path for seen in http_target.seen] == ["/redirect", "/ok"]


async def test_redirects_are_not_followed_when_turned_off(probe: Probe, http_target: HttpTarget) -> None:
    spec = HttpProbe(url=http_target.url("/redirect?to=/ok"), follow_redirects=False)
    refused = await probe(spec)
    accepted = await probe(replace(spec, expected_status=(302,)))
    assert (refused.ok, refused.message) == (False, "status 302, expected 2xx")
    assert accepted.ok
    assert [seen.path for seen in http_target.seen] == ["/redirect", "/redirect"]


async def test_a_redirect_loop_fails_after_ten_hops(probe: Probe, http_target: HttpTarget) -> None:
    result = await probe(HttpProbe(url=http_target.url("/loop")))
    assert (result.ok, result.message) == (False, "more than 10 redirects")


async def test_a_303_after_post_is_followed_with_get(probe: Probe, http_target: HttpTarget) -> None:
    spec = HttpProbe(
        url=http_target.url("/redirect?to=/method&code=303"),
        method="POST",
        body="payload",
        body_regex="method=GET",
    )
    result = await probe(spec)
    assert result.ok, result.message


async def test_method_and_body_are_sent(probe: Probe, http_target: HttpTarget) -> None:
    spec = HttpProbe(url=http_target.url("/method"), method="put", body="hello")
    result = await probe(replace(spec, body_regex="^method=PUT body=hello$"))
    assert result.ok, result.message


async def test_a_secret_header_reaches_the_server_but_never_the_message(
    probe: Probe, http_target: HttpTarget
) -> None:
    headers = (
        Header(name="Authorization", secret=SecretRef(name="probe-auth", key="token")),
        Header(name="X-Probe", value="sla-operator"),
    )
    failing = await probe(HttpProbe(url=http_target.url("/status/500"), headers=headers))
    mismatch = await probe(HttpProbe(url=http_target.url("/ok"), headers=headers, body_regex="s3cr3t"))
    assert http_target.seen[0].headers["Authorization"] == "Bearer s3cr3t-t0ken-value"
    assert http_target.seen[0].headers["X-Probe"] == "sla-operator"
    for result in (failing, mismatch):
        assert not result.ok
        assert "s3cr3t-t0ken" not in result.message


async def test_an_unreadable_secret_names_the_secret_and_key(probe: Probe, http_target: HttpTarget) -> None:
    headers = (Header(name="Authorization", secret=SecretRef(name="missing", key="token")),)
    result = await probe(HttpProbe(url=http_target.url("/ok"), headers=headers))
    assert not result.ok
    assert result.message == ("header Authorization: cannot read key 'token' of secret 'missing' (KeyError)")
    assert http_target.seen == []


async def test_credentials_are_not_carried_to_another_origin(probe: Probe, http_target: HttpTarget) -> None:
    other_origin = f"http://localhost:{http_target.port}/ok"
    headers = (Header(name="Authorization", secret=SecretRef(name="probe-auth", key="token")),)
    result = await probe(HttpProbe(url=http_target.url(f"/redirect?to={other_origin}"), headers=headers))
    assert result.ok, result.message
    first, second = http_target.seen
    assert "Authorization" in first.headers
    assert "Authorization" not in second.headers


async def test_a_host_header_given_in_the_spec_is_sent_instead_of_the_url_host(
    probe: Probe, http_target: HttpTarget
) -> None:
    headers = (Header(name="Host", value="payments.example.com"),)
    result = await probe(HttpProbe(url=http_target.url("/ok"), headers=headers))
    assert result.ok, result.message
    assert http_target.seen[0].headers["Host"] == "payments.example.com"


async def test_a_url_that_is_not_http_fails_with_a_clear_message(probe: Probe) -> None:
    result = await probe(HttpProbe(url="ftp://127.0.0.1/file"))
    assert (result.ok, result.message) == (
        False,
        "url 'ftp://127.0.0.1/file' is not an http or https URL with a host",
    )


async def test_an_ipv6_loopback_target_is_probed(probe: Probe) -> None:
    runner, target = await serve_http("::1")
    try:
        result = await probe(HttpProbe(url=target.url("/ok")))
    finally:
        await runner.cleanup()
    assert result.ok, result.message
    assert target.seen[0].headers["Host"] == f"[::1]:{target.port}"
