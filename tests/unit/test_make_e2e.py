"""`make test-e2e` builds the local control plane (root, apt-get) only when no cluster is given."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def planned_commands(kubeconfig: str | None) -> str:
    """What `make test-e2e` would run, printed by `make -n` without running any of it."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = kubeconfig
    finished = subprocess.run(["make", "-n", "test-e2e"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60, check=True)
    return finished.stdout


def test_a_kubeconfig_of_a_real_cluster_is_tested_without_building_anything(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    commands = planned_commands(str(kubeconfig))
    assert "build-control-plane.sh" not in commands
    assert "pytest tests/e2e" in commands


@pytest.mark.parametrize("kubeconfig", [None, "", "/nonexistent/kubeconfig"],
                         ids=["unset", "empty", "missing file"])
def test_without_a_kubeconfig_file_the_local_control_plane_is_built_first(
        kubeconfig: str | None) -> None:
    commands = planned_commands(kubeconfig).splitlines()
    build = commands.index("bash scripts/build-control-plane.sh")
    tests = next(i for i, line in enumerate(commands) if "pytest tests/e2e" in line)
    assert build < tests
