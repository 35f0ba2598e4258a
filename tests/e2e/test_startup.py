"""`sla-operator run` refuses to start, in one line, when it may not read its own kinds."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from support import CRDS, REPO

pytestmark = pytest.mark.e2e

Kubectl = Callable[..., Any]


def run_operator(kubeconfig: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    return subprocess.run([sys.executable, "-m", "sla_operator", "run", "--metrics-port", "0",
                           "--status-port", "0"], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120, check=False)


def test_a_user_without_the_cluster_role_is_told_which_list_was_forbidden(
        control_plane: Any, kubectl: Kubectl) -> None:
    if control_plane is None:
        pytest.skip("an external cluster has no restricted user to authenticate as")
    kubectl("apply", "-f", str(CRDS))
    for crd in ("servicelevelagreements", "maintenancewindows", "incidents"):
        kubectl("wait", "--for=condition=Established", f"crd/{crd}.sla.dev", "--timeout=60s")
    finished = run_operator(control_plane.restricted_kubeconfig)  # retried forever before
    assert finished.returncode == 1
    (error,) = [line for line in finished.stderr.splitlines() if line.startswith("sla-operator")]
    assert error == (
        "sla-operator run: not allowed to list servicelevelagreements.sla.dev in all namespaces "
        '(403 Forbidden: servicelevelagreements.sla.dev is forbidden: User '
        '"sla-operator-restricted" cannot list resource "servicelevelagreements" in API group '
        '"sla.dev" at the cluster scope); grant the chart\'s ClusterRole')
    assert "Traceback" not in finished.stderr
