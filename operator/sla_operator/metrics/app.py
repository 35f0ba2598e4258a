"""/metrics and /healthz: the HTTP side of the metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from sla_operator.content_coding import gzip_wanted
from sla_operator.exposition import Exposition
from sla_operator.metrics.collector import SnapshotSource

HealthCheck = Callable[[], list[str]]
EXPOSITION = web.AppKey("exposition", Exposition)
WRITE_SLICE = 256 * 1024


def metrics_app(engine: SnapshotSource, registry: CollectorRegistry, stale_after: float = 60.0,
                checks: Sequence[HealthCheck] = ()) -> web.Application:
    """/metrics in the Prometheus text format and /healthz, which fails (503, one line per
    reason) when the evaluation loop stalls, the probe scheduler stopped, or a check fails.

    /metrics is rendered in a worker thread, once per snapshot (see ``exposition``)."""
    exposition = Exposition(registry, lambda: (engine.snapshot, engine.active))

    async def metrics(request: web.Request) -> web.StreamResponse:
        gzipped = gzip_wanted(request.headers.get("Accept-Encoding"))
        body = await exposition.body(gzipped)
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
        response.content_length = len(body)
        await response.prepare(request)
        # In slices: handed over whole, tens of megabytes would be copied into the socket's
        # buffer in one go on the loop.
        view = memoryview(body)
        for start in range(0, len(body), WRITE_SLICE):
            await response.write(view[start:start + WRITE_SLICE])
        await response.write_eof()
        return response

    async def healthz(_: web.Request) -> web.Response:
        problems = engine.health_problems(stale_after)
        for check in checks:
            problems += check()
        if problems:
            return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
        return web.Response(text="ok\n")

    async def close(_: web.Application) -> None:
        exposition.close()

    app = web.Application()
    app[EXPOSITION] = exposition
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.on_cleanup.append(close)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner | None:
    """Start ``app`` on host:port (port 0 disables it); the caller cleans the runner up."""
    if port == 0:
        return None
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
