"""Real parts for the alerting tier: Debian's Prometheus and Alertmanager on loopback ports,
`sla-operator local`, a probe target the test switches, and a webhook receiver."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode
from urllib.request import urlopen

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
INSTALL_HINT = "run `bash scripts/install-prometheus.sh` as root"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary(path: str) -> str:
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is missing: {INSTALL_HINT}")
    return path


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = probe()
        except OSError as error:  # not listening yet
            found, last = None, error
        if found:
            return found
        last = found if found is not None else last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def get_json(url: str) -> Any:
    with urlopen(url, timeout=10) as response:
        return json.loads(response.read())


class _Server:
    """A threaded HTTP server on a free loopback port; ``handle`` answers every request."""

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], tuple[int, bytes]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                status, body = handle(self)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                return

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Target(_Server):
    """The service under probe: healthy until the test says otherwise."""

    def __init__(self) -> None:
        self.healthy = True
        super().__init__(lambda _: (200, b"ok") if self.healthy else (503, b"down"))


class Webhook(_Server):
    """Alertmanager's webhook receiver: every notification, with when it arrived, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[datetime, str, dict[str, Any]]] = []
        self.lock = threading.Lock()

        def handle(request: BaseHTTPRequestHandler) -> tuple[int, bytes]:
            length = int(request.headers.get("Content-Length") or 0)
            body = json.loads(request.rfile.read(length) or b"{}")
            with self.lock:
                self.received.append((datetime.now(UTC), request.path, body))
            return 200, b""

        super().__init__(handle)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def first(self, path: str, alertname: str, agreement: str) -> tuple[datetime, dict[str, Any]] | None:
        """The first firing ``alertname`` of ``agreement`` notified to ``path``, and when."""
        with self.lock:
            for when, where, body in self.received:
                for alert in body.get("alerts", []):
                    labels = alert["labels"]
                    if (where == path and labels.get("alertname") == alertname
                            and labels.get("agreement") == agreement and alert["status"] == "firing"):
                        return when, alert
        return None

    def alerts(self, path: str, agreement: str) -> list[dict[str, Any]]:
        with self.lock:
            return [a for _, where, body in self.received if where == path
                    for a in body.get("alerts", []) if a["labels"].get("agreement") == agreement]


class Process:
    """A server started by the test; its output goes to a log file shown on failure."""

    def __init__(self, name: str, command: list[str], log_path: Path) -> None:
        self.name, self.log_path = name, log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def assert_running(self) -> None:
        assert self.process.poll() is None, f"{self.name} exited:\n{self.log()}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def sla_operator(*args: str) -> list[str]:
    return [sys.executable, "-m", "sla_operator", *args]


def rules_file(manifests: Path, destination: Path) -> Path:
    result = subprocess.run(sla_operator("rules", "--manifests", str(manifests)), cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    destination.write_text(result.stdout)
    return destination


class Prometheus:
    """/usr/bin/prometheus scraping the operator every second and evaluating every second."""

    def __init__(self, workdir: Path, metrics_port: int, rules: Path, alertmanager_port: int) -> None:
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "alerting": {"alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
            "scrape_configs": [{"job_name": "sla-operator", "static_configs": [
                {"targets": [f"127.0.0.1:{metrics_port}"]}]}],
        }))
        self.process = Process("prometheus", [
            binary("/usr/bin/prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}"], workdir / "prometheus.log")

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        return get_json(f"http://127.0.0.1:{self.port}/api/v1/{path}{query}")

    def ready(self) -> bool:
        self.process.assert_running()
        with urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=5) as response:
            return bool(response.status == 200)

    def firing(self, alertname: str, agreement: str) -> list[dict[str, Any]]:
        alerts = self.api("alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == alertname
                and a["labels"].get("agreement") == agreement and a["state"] == "firing"]


class Alertmanager:
    """/usr/bin/prometheus-alertmanager with clustering off."""

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.port = free_port()
        path = workdir / "alertmanager.yml"
        path.write_text(json.dumps(config))
        self.process = Process("alertmanager", [
            binary("/usr/bin/prometheus-alertmanager"), f"--config.file={path}",
            f"--storage.path={workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            workdir / "alertmanager.log")

    def ready(self) -> bool:
        self.process.assert_running()
        with urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=5) as response:
            return bool(response.status == 200)

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = get_json(f"http://127.0.0.1:{self.port}/api/v2/alerts")
        return alerts


def example_alertmanager_config(webhook: Webhook) -> dict[str, Any]:
    """examples/alertmanager/alertmanager.yml with its receivers pointed at the test's
    webhook, and its waits cut to a second so a test sees notifications promptly."""
    import yaml

    config: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = webhook.url(f"/{receiver['name']}")
    for route in [config["route"], *config["route"]["routes"]]:
        route.update({"group_wait": "1s", "group_interval": "1s"})
    return config

