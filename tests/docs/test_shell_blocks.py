"""Every shell block of README.md and docs/API.md runs as written, from a fresh state folder on
free ports, or an HTML comment before it says why it cannot run here (see ``docs_markdown``)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from docs_markdown import ROOT, Block, blocks, shell_blocks

from sla_operator.cli import build_parser

BLOCKS = shell_blocks()
LONG_RUNNING = ("make run",)  # started, their page and metrics read, stopped as Ctrl-C does


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder that looks like the repository (its entries linked) where commands may write."""
    folder = tmp_path / "repo"
    folder.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".state", ".git"):
            (folder / entry.name).symlink_to(entry)
    return folder


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KUBERNETES_", "SLA_DEMO_")) and k != "KUBECONFIG"}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update({"SLA_DEMO_STATE": str(tmp_path / "demo-state"),
                "SLA_DEMO_METRICS_PORT": str(free_port()),
                "SLA_DEMO_STATUS_PORT": str(free_port()),
                "SLA_DEMO_TARGET_PORT": str(free_port()),
                "KUBECONFIG": str(tmp_path / "no-cluster-here")})
    return env


def test_there_are_shell_blocks_and_some_run() -> None:
    assert len(BLOCKS) >= 5
    assert any(list(b.commands()) for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.where)
def test_each_line_runs_as_written_or_is_marked(block: Block, workdir: Path,
                                                tmp_path: Path) -> None:
    env = environment(tmp_path)
    for number, command in block.commands():
        where = f"{block.where}, line {number}: {command}"
        if command.startswith(LONG_RUNNING):
            run_and_stop(command, workdir, env, where)
            continue
        if re.search(r"\b(kubectl|helm)\b", command):
            pytest.fail(f"{where}: needs a cluster; mark it <!-- docs-test: cluster lines "
                        f"{number} -->")
        process = subprocess.Popen(["bash", "-o", "pipefail", "-c", command], cwd=workdir,
                                   env=env, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            shown, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # with whatever it started
            shown, _ = process.communicate()
            pytest.fail(f"{where}: still running after 60 s (long-running? see LONG_RUNNING)"
                        f"\n{shown}")
        assert process.returncode == 0, f"{where}: exit {process.returncode}\n{shown}"


def run_and_stop(command: str, workdir: Path, env: dict[str, str], where: str) -> None:
    status_port, metrics_port = env["SLA_DEMO_STATUS_PORT"], env["SLA_DEMO_METRICS_PORT"]
    process = subprocess.Popen(["bash", "-c", command], cwd=workdir, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    output: list[str] = []
    try:
        page = read_when_up(f"http://127.0.0.1:{status_port}/", process, output)
        assert "Demo Shop" in page, f"{where}: the status page does not show the demo"
        metrics = read_when_up(f"http://127.0.0.1:{metrics_port}/metrics", process, output)
        assert 'sla_objective_ratio{agreement="demo-shop"' in metrics
    finally:
        if process.poll() is None:  # read_when_up reaped it when it failed to come up
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole group
            rest, _ = process.communicate(timeout=30)
            output.append(rest)
    shown = "".join(output)
    assert "stopped; the state stays in" in shown, f"{where}: did not stop cleanly\n{shown}"
    assert f"http://127.0.0.1:{status_port}/" in shown  # the URL it printed is the one that works


def read_when_up(url: str, process: subprocess.Popen[str], output: list[str]) -> str:
    deadline = time.monotonic() + 120  # a busy machine: the first start compiles and imports
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return str(answer.read().decode())
        except OSError:
            time.sleep(0.3)
    process.kill()
    rest, _ = process.communicate(timeout=10)
    raise AssertionError(f"{url} never answered:\n{''.join(output)}{rest}")


def test_the_command_synopses_name_only_flags_their_commands_take() -> None:
    """The usage blocks (no language) list commands and flags; each flag must exist."""
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    wrong = []
    for path in (ROOT / "README.md", ROOT / "docs" / "API.md"):
        for block in blocks(path):
            if block.info:
                continue
            for text in block.lines:
                words = text.split("#")[0].replace("[", " ").replace("]", " ").split()
                if len(words) < 2 or words[0] != "sla-operator" or words[1] not in commands:
                    continue
                known = commands[words[1]]._option_string_actions
                wrong += [f"{block.where}: {words[1]} {flag}" for flag in words[2:]
                          if flag.startswith("-") and flag not in known]
    assert wrong == []
