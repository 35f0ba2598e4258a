"""What operator e2e tests share: a target they control, the operator as a process, polling."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.request import urlopen

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90.0,
             every: float = 0.25) -> T:
    """Poll until ``probe`` returns something truthy; fail with ``what`` after ``timeout``.

    A probe that trips over a missing field or a failed kubectl call (None) has not seen it yet.
    """
    deadline = time.monotonic() + timeout
    last: T | Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = probe()
        except (KeyError, TypeError, AttributeError) as error:
            last = error
        else:
            if found:
                return found
            last = found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


class Target:
    """An HTTP health endpoint whose answer the test switches; it logs when it answered what."""

    def __init__(self) -> None:
        self.healthy = True
        self.log: list[tuple[datetime, int]] = []
        self.authorization: set[str] = set()  # Authorization headers the probes sent
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with target.lock:
                    status = 200 if target.healthy else 503
                    target.log.append((datetime.now(UTC), status))
                    target.authorization.add(self.headers.get("Authorization", ""))
                body = b'{"status":"ok"}' if status == 200 else b'{"status":"down"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def set_healthy(self, healthy: bool) -> None:
        with self.lock:
            self.healthy = healthy

    def first_answer(self, status: int, after: datetime) -> datetime | None:
        with self.lock:
            return next((t for t, s in self.log if s == status and t >= after), None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OperatorProcess:
    """`sla-operator run` as a child process, the way a user starts it."""

    def __init__(self, kubeconfig: str, namespace: str, workdir: Path, status_page: bool = False,
                 extra_args: tuple[str, ...] = (), name: str = "operator",
                 env: dict[str, str] | None = None) -> None:
        self.kubeconfig, self.namespace = kubeconfig, namespace
        self.metrics_port = free_port()
        self.status_port = free_port() if status_page else 0
        self.extra_args = extra_args
        self.env = env or {}
        self.log_path = workdir / f"{name}-{namespace}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1", **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sla_operator", "run",
             *(["--namespace", self.namespace] if self.namespace else []),  # "": every one
             "--metrics-port", str(self.metrics_port), "--status-port", str(self.status_port),
             "--bind-address", "127.0.0.1", "--status-interval", "1", "--evaluate-interval", "0.2",
             *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def assert_running(self) -> None:
        assert self.process is not None and self.process.poll() is None, (
            f"the operator exited; its log:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def metrics(self) -> str | None:
        """The /metrics text, or None while the operator is not listening yet."""
        try:
            with urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            self.assert_running()
            return None


    def status_page(self, path: str) -> str | None:
        """A status page route's body, or None while the operator is not listening yet."""
        try:
            with urlopen(f"http://127.0.0.1:{self.status_port}{path}", timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            self.assert_running()
            return None


def get(kubectl: Callable[..., Any], namespace: str, resource: str) -> Any:
    result = kubectl("get", resource, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextmanager
def namespace_with_crds(kubectl: Callable[..., Any], prefix: str) -> Iterator[str]:
    """The CRDs installed and Established, and a fresh namespace deleted afterwards."""
    kubectl("apply", "-f", str(CRDS))
    for crd in ("servicelevelagreements", "maintenancewindows", "incidents", "supportrequests"):
        kubectl("wait", "--for=condition=Established", f"crd/{crd}.sla.dev", "--timeout=60s")
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)
