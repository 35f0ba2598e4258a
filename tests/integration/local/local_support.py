"""Real processes for local-mode tests: `python -m sla_operator local`, a target the test steers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parents[3]
DEADLINE = 60.0  # generous: machines are noisy, and polling ends as soon as the state is reached
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def write_manifests(path: Path, *documents: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def agreement(name: str, port: int, paths: tuple[str, ...] = ("/api",),
              namespace: str = "demo", **spec: Any) -> dict[str, Any]:
    """An agreement probing the test's target every second; two failures make an endpoint Down."""
    endpoints = [{"name": p.strip("/").replace("/", "-"), "interval": "1s", "timeout": "900ms",
                  "failureThreshold": 2, "successThreshold": 2,
                  "http": {"url": f"http://127.0.0.1:{port}{p}"}} for p in paths]
    return {"apiVersion": "sla.dev/v1alpha1", "kind": "ServiceLevelAgreement",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"service": name.title(), "objective": "99.5", "endpoints": endpoints, **spec}}


def read(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path} does not hold a mapping"
    return loaded


@dataclass
class Target:
    """An HTTP service on 127.0.0.1 whose paths answer 200 or 503 as the test says."""

    port: int = field(default_factory=free_port)
    failing: set[str] = field(default_factory=set)
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def answer(request: web.Request) -> web.Response:
            if request.path in self.failing:
                return web.json_response({"status": "failing"}, status=503)
            return web.json_response({"status": "ok"})

        app = web.Application()
        app.router.add_get("/{tail:.*}", answer)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class LocalProcess:
    """One `sla-operator local` process; its log goes to a file the test can read."""

    manifests: Path
    state: Path
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> LocalProcess:
        command = [sys.executable, "-m", "sla_operator", "--log-level", "INFO", "local",
                   "--manifests", str(self.manifests), "--state", str(self.state),
                   "--metrics-port", str(self.metrics_port), "--status-port", "0",
                   "--bind-address", "127.0.0.1", "--evaluate-interval", "0.2",
                   "--status-interval", "1", *extra]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last write, exactly like a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    # ------------------------------------------------------------ the state folder

    def incident_files(self, namespace: str = "demo") -> list[Path]:
        folder = self.state / "incidents" / namespace
        return sorted(folder.glob("*.yaml")) if folder.is_dir() else []

    def status(self, name: str, namespace: str = "demo",
               plural: str = "servicelevelagreements") -> dict[str, Any]:
        path = self.state / "status" / plural / namespace / f"{name}.yaml"
        return dict(read(path).get("status") or {}) if path.exists() else {}

    def state_files(self) -> Iterator[Path]:
        # Hidden temporaries come and go with every atomic write: they are not state.
        return (p for p in self.state.rglob("*") if p.is_file() and not p.name.startswith("."))

    async def wait_for(self, what: str, check: Callable[[], T | None],
                       deadline: float = DEADLINE) -> T:
        """Poll ``check`` until it returns something true; fail with the process log."""
        return await wait_for(what, check, deadline, self)


async def wait_for(what: str, check: Callable[[], T | None], deadline: float = DEADLINE,
                   process: LocalProcess | None = None) -> T:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            result = check()
        except (FileNotFoundError, yaml.YAMLError, KeyError, IndexError):
            result = None
        if result:
            return result
        if process is not None and process.process is not None and process.process.poll() is not None:
            raise AssertionError(f"the process exited while waiting for {what}:\n{process.log()}")
        if loop.time() > end:
            tail = process.log()[-4000:] if process is not None else ""
            raise AssertionError(f"gave up after {deadline:.0f}s waiting for {what}\n{tail}")
        await asyncio.sleep(0.1)


async def poll(check: Callable[[], Awaitable[T | None]], what: str, deadline: float = DEADLINE) -> T:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > end:
            raise AssertionError(f"gave up after {deadline:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)
