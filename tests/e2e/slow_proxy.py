"""An HTTPS reverse proxy in front of the API server that can hold requests back.

One replica reaches the API server through it. The test decides which of that replica's
requests are held (its status writes only, or everything); a held request waits until the
test releases it and is then answered 503 without ever reaching the API server, as a request
lost in a stalled network would be. Every request is logged when it *arrives* here: that is
the moment the replica sent it, which is what the fencing rule is about.
"""

from __future__ import annotations

import http.client
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic()
    method: str
    path: str
    held: bool

    @property
    def write(self) -> bool:
        return self.method in WRITES

    @property
    def lease(self) -> bool:
        return "/leases/" in self.path or self.path.endswith("/leases")


class SlowProxy:
    def __init__(self, upstream: str, workdir: Path) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 443
        self.arrivals: list[Arrival] = []
        self.hold: Callable[[str, str], bool] = lambda _method, _path: False
        self.released = threading.Event()
        self.lock = threading.Lock()
        cert, key = workdir / "proxy.crt", workdir / "proxy.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hold_from_now(self, which: Callable[[str, str], bool]) -> None:
        self.released.clear()
        self.hold = which

    def release(self) -> None:
        self.hold = lambda _method, _path: False
        self.released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection, bodies end at close

            def _any(self) -> None:
                held = proxy.hold(self.command, self.path)
                with proxy.lock:
                    proxy.arrivals.append(Arrival(time.monotonic(), self.command, self.path, held))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if held:
                    proxy.released.wait(120)
                    self.send_error(503, "held back by the test's proxy")
                    return
                upstream = http.client.HTTPSConnection(
                    proxy.upstream_host, proxy.upstream_port,
                    context=ssl._create_unverified_context(), timeout=400)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "accept-encoding")}
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    self.send_response(response.status, response.reason)
                    for name, value in response.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection",
                                                "content-length"):
                            self.send_header(name, value)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    while chunk := response.read1(65536):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (OSError, http.client.HTTPException):
                    return  # the replica or the API server closed the connection
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                return

        return Handler
