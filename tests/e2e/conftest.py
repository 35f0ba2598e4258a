"""Fixtures giving e2e tests a real Kubernetes API.

With ``KUBECONFIG`` pointing at an existing file (kind, k3d, minikube, ...) that cluster is
used as is. Otherwise a local control plane (etcd + kube-apiserver + kube-controller-manager
1.20.2, see controlplane.py) is started once per session; its binaries are built on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Imported by path so this works under any pytest import mode and without packages.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from controlplane import ControlPlane, ControlPlaneError, ensure_binaries, find_binaries  # noqa: E402

_build_error: str | None = None


def _external_kubeconfig() -> str | None:
    path = os.environ.get("KUBECONFIG")
    return path if path and os.path.isfile(path) else None


def _build_uncaptured(config: pytest.Config) -> None:
    # The first build takes minutes; show its progress instead of capturing it silently.
    global _build_error
    capman = config.pluginmanager.getplugin("capturemanager")
    try:
        if capman is not None:
            with capman.global_and_fixture_disabled():
                ensure_binaries()
        else:
            ensure_binaries()
    except ControlPlaneError as e:
        _build_error = str(e)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Build before the first test starts: inside a fixture the build would count against
    # per-test timeouts (pytest-timeout includes fixture setup) and be killed half-way.
    if session.config.option.collectonly or _external_kubeconfig() or find_binaries() is not None:
        return
    if any("control_plane" in getattr(item, "fixturenames", ()) for item in session.items):
        _build_uncaptured(session.config)


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest) -> Iterator[ControlPlane | None]:
    """The local ControlPlane, or None when ``KUBECONFIG`` selects an external cluster."""
    if _external_kubeconfig():
        yield None
        return
    if _build_error is None and find_binaries() is None:
        _build_uncaptured(request.config)
    if _build_error is not None:
        pytest.fail(_build_error, pytrace=False)
    cp = ControlPlane()
    try:
        cp.start()
    except ControlPlaneError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane | None) -> str:
    """Path of an admin kubeconfig for the cluster under test."""
    if control_plane is None:
        external = _external_kubeconfig()
        assert external is not None
        return external
    return control_plane.kubeconfig


def _kubectl_binary() -> str:
    if os.access("/usr/bin/kubectl", os.X_OK):
        return "/usr/bin/kubectl"
    found = shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found; install it with: apt-get install -y kubernetes-client")
    return found


KubectlRunner = Callable[..., "subprocess.CompletedProcess[str]"]


def make_kubectl(kubeconfig_path: str) -> KubectlRunner:
    """A kubectl runner bound to one kubeconfig (tests also build one for the restricted user)."""
    binary = _kubectl_binary()

    def kubectl(
        *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = [binary, f"--kubeconfig={kubeconfig_path}", *args]
        result = subprocess.run(cmd, input=input, text=True, capture_output=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed with exit code {result.returncode}:\n"
                f"{result.stderr.strip()}\n{result.stdout.strip()}".rstrip()
            )
        return result

    return kubectl


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> KubectlRunner:
    """``kubectl(*args, input=None, check=True) -> CompletedProcess`` against the admin kubeconfig."""
    return make_kubectl(kubeconfig)
