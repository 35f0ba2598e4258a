"""The status page's aiohttp application: cached documents, security headers, plain 404s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from sla_operator.content_coding import gzip_wanted
from sla_operator.domain.views import Snapshot
from sla_operator.statuspage.api_v2 import CORS_HEADERS, PATHS, PREFIX
from sla_operator.statuspage.render import STATIC, Document, Renderer

# No script at all, no inline style, nothing from elsewhere, never framed.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
RENDERER: web.AppKey[Renderer] = web.AppKey("renderer", Renderer)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status_app(snapshot: Callable[[], Snapshot]) -> web.Application:
    """Serve the page of whatever ``snapshot()`` returns; it never calls anything else."""
    app = web.Application(middlewares=[_plain_errors])
    app[RENDERER] = Renderer(snapshot)
    app.on_response_prepare.append(_secure)
    for path in ("/", "/api/v1/status", "/feed.atom", *PATHS):
        app.router.add_get(path, _page_document(path))
    for path in PATHS:
        app.router.add_route("OPTIONS", path, _preflight)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/badge/{namespace}/{agreement}.svg", _badge)
    app.router.add_get("/healthz", _healthz)
    return app


def respond(request: web.Request, doc: Document) -> web.Response:
    """The document, gzipped when asked, or 304 when the client has it already."""
    zipped = gzip_wanted(request.headers.get("Accept-Encoding"))
    etag = doc.etag[:-1] + '-gzip"' if zipped else doc.etag
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    wanted = [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]
    if etag in wanted or f"W/{etag}" in wanted or "*" in wanted:
        return web.Response(status=304, headers=headers)
    if zipped:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=doc.gzipped if zipped else doc.body,
                        headers={**headers, "Content-Type": doc.content_type})


def _page_document(path: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return respond(request, request.app[RENDERER].current()[path])
    return handler


async def _static(request: web.Request) -> web.StreamResponse:
    doc = STATIC.get(request.match_info["name"])
    if doc is None:
        raise web.HTTPNotFound()
    return respond(request, doc)


async def _badge(request: web.Request) -> web.StreamResponse:
    doc = request.app[RENDERER].badge(request.match_info["namespace"], request.match_info["agreement"])
    if doc is None:
        raise web.HTTPNotFound()
    return respond(request, doc)


async def _preflight(_: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def _healthz(_: web.Request) -> web.StreamResponse:
    return web.Response(text="ok\n")


@web.middleware
async def _plain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors are one plain line: nothing of the request or the server is echoed back."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return web.Response(status=error.status, text=f"{error.status} {error.reason}\n")


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith(PREFIX):
        response.headers.update(CORS_HEADERS)
