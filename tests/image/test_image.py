"""The container image: built with podman from the Dockerfile, run as user 65532 on a
read-only root file system, in the two ways a user runs it (--help, and local mode)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import pytest

# Building the image (wheels, then podman) is part of the first test: more than the default.
pytestmark = pytest.mark.timeout(1200)
REPO = Path(__file__).resolve().parents[2]
TAG = "localhost/sla-operator:test"
CACHE = Path(os.environ.get("SLA_IMAGE_CACHE", Path.home() / ".cache" / "sla-operator" / "image"))


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTAINERS_CONF": str(CACHE / "containers.conf")}
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env,
                          check=check, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> str:
    started = time.monotonic()
    built = subprocess.run(["bash", str(REPO / "scripts" / "build-image.sh"), TAG],
                           capture_output=True, text=True, timeout=1500,
                           env={**os.environ, "PYTHON": sys.executable})
    assert built.returncode == 0, built.stderr[-4000:]
    print(f"\n[image] build {time.monotonic() - started:.0f}s\n{built.stderr.strip()}")
    return TAG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_args(*extra: str) -> list[str]:
    return ["run", "--rm", "--pull=never", "--user", "65532", "--read-only", *extra]


def test_the_image_runs_as_an_unprivileged_user_without_compilers_or_pip(image: str) -> None:
    shown = podman(*run_args(image, "--help"))
    assert "run" in shown.stdout and "local" in shown.stdout and "report" in shown.stdout
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["sla-operator"]
    probe = podman(*run_args("--entrypoint", "/bin/sh", image, "-c",
                             "id -u; command -v gcc cc pip pip3 || true; "
                             "ls /root/.cache /tmp/pip* 2>/dev/null || true"))
    lines = probe.stdout.split()
    assert lines == ["65532"], probe.stdout  # no compiler, no pip, no pip cache


def test_local_mode_runs_on_a_read_only_root_with_its_state_on_a_volume(
        image: str, tmp_path: Path) -> None:
    port = free_port()
    name = f"sla-image-{port}"
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    detached = [a for a in run_args() if a != "--rm"]
    podman(*detached, "-d", "--name", name, "--network=host",
           "-v", f"{REPO / 'examples' / 'demo'}:/demo:ro", "-v", f"{state}:/state", image,
           "local", "--manifests", "/demo", "--state", "/state", "--metrics-port", str(port),
           "--status-port", "0", "--bind-address", "127.0.0.1")
    try:
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "sla_objective_ratio{" not in text:
            try:
                with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                    text = answer.read().decode()
            except OSError:
                time.sleep(0.5)
        shown = podman("logs", name, check=False)
        logs = shown.stdout + shown.stderr
        assert "sla_objective_ratio{" in text, logs[-3000:]
        assert 'agreement="demo-shop"' in text
        assert any(state.rglob("*.yaml")), "local mode wrote no state to its volume"
    finally:
        podman("rm", "--force", name, check=False)

