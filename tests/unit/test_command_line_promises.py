"""What the commands promise on the command line: listeners where the log says, errors that name
the flag, usage errors exit 2 and failures 1, and no empty result without a word."""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from local_folders import Folders, agreement

from sla_operator.cli import _settings, build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sla_operator", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


def test_make_help_lists_every_target_with_a_description() -> None:
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=True).stdout
    described = [line.split(":", 1)[0] for line in (ROOT / "Makefile").read_text().splitlines()
                 if ":" in line and "## " in line and not line.startswith(("\t", "#"))]
    assert "test-e2e" in described
    for target in described:
        assert f"make {target} " in listed


def test_local_listens_on_loopback_and_run_on_every_interface_unless_told() -> None:
    parser = build_parser()
    local = parser.parse_args(["local", "--manifests", "m", "--state", "s"])
    assert _settings(local).bind_address == "127.0.0.1"
    assert _settings(parser.parse_args(["run"])).bind_address == "0.0.0.0"
    told = parser.parse_args(["local", "--manifests", "m", "--state", "s", "--bind-address", "::"])
    assert _settings(told).bind_address == "::"


def test_the_log_says_where_a_listener_really_listens() -> None:
    from sla_operator.local import _where

    assert _where("127.0.0.1", 9090, "/metrics") == "http://127.0.0.1:9090/metrics"
    assert _where("0.0.0.0", 9090, "/metrics") == (
        "http://127.0.0.1:9090/metrics (listening on all interfaces, 0.0.0.0)")
    assert _where("::1", 8080, "/") == "http://[::1]:8080/"


def test_a_manifests_file_is_not_called_a_missing_folder(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "payments-api.yaml"
    manifest.write_text("kind: ServiceLevelAgreement\n")
    for command in (["local", "--manifests", str(manifest), "--state", str(tmp_path / "s")],
                    ["rules", "--manifests", str(manifest)]):
        assert main(command) == 2
        error = capsys.readouterr().err
        assert f"--manifests {manifest}: is a file" in error and "no such folder" not in error


def test_a_missing_manifests_folder_exits_2_in_local_and_rules(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "--manifests", str(tmp_path / "no"), "--state", str(tmp_path / "s")]) == 2
    assert main(["rules", "--manifests", str(tmp_path / "no")]) == 2
    assert capsys.readouterr().err.count("no such folder") == 2


def test_a_state_folder_that_cannot_be_made_names_the_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m").mkdir()
    assert main(["local", "--manifests", str(tmp_path / "m"), "--state", "/proc/nope"]) == 2
    error = capsys.readouterr().err
    assert "--state /proc/nope: cannot create the folder" in error and "[Errno" not in error


def test_a_busy_port_names_the_flag(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        finished = run_cli("local", "--manifests", str(tmp_path / "m"), "--state",
                           str(tmp_path / "s"), "--metrics-port", "0", "--status-port", str(port))
    assert finished.returncode == 1
    assert f"--status-port {port}: cannot listen on 127.0.0.1:{port}" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_a_wrong_period_is_refused_before_anything_connects(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env["KUBECONFIG"] = str(tmp_path / "none")  # connecting would fail with another message
    finished = run_cli("report", "--period", "banana", env=env)
    assert finished.returncode == 2
    assert "'banana' is not a period label" in finished.stderr
    assert "Kubernetes configuration" not in finished.stderr


def test_an_unreachable_api_server_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once it is closed
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env["KUBECONFIG"] = str(kubeconfig)
    for command in ("report", "rules"):
        finished = run_cli(command, env=env)
        assert finished.returncode == 1
        assert finished.stderr.splitlines() == [
            f"sla-operator {command}: cannot reach the API server at http://127.0.0.1:{port}: "
            + finished.stderr.split(f"127.0.0.1:{port}: ", 1)[1].strip()]


def test_rules_for_a_namespace_without_agreements_says_where_they_are(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--manifests", str(ROOT / "examples"), "--namespace", "payments"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert ("no agreement in namespace(s) payments under --manifests" in captured.err
            and "namespace(s) default, demo" in captured.err
            and "without metadata.namespace is in namespace default" in captured.err)
    assert "not supported here" not in captured.err  # examples/alertmanager is no manifest


def demo_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_on_another_target_port_probes_that_port(tmp_path: Path) -> None:
    folder = Path(demo_script()._probing(8123, str(tmp_path)))
    texts = "".join(p.read_text() for p in folder.glob("*.yaml"))
    assert "127.0.0.1:8123/api" in texts and "8099" not in texts
    assert {p.name for p in folder.glob("*.yaml")} == {
        p.name for p in (ROOT / "examples" / "demo").glob("*.yaml")}


async def test_local_says_which_objects_land_in_default_and_which_files_are_no_manifests(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folders = Folders(tmp_path)
    unplaced = agreement("shop")
    del unplaced["metadata"]["namespace"]
    folders.put("shop.yaml", unplaced)
    folders.put("alertmanager.yml", {"route": {"receiver": "pager"}, "receivers": []})
    with caplog.at_level(logging.INFO, logger="sla_operator.local"):
        await folders.settle()
    said = {(r.levelno, r.getMessage()) for r in caplog.records}
    assert (logging.INFO, f"{folders.manifests / 'shop.yaml'}: no metadata.namespace, so in "
                          "namespace default: ServiceLevelAgreement default/shop") in said
    assert (logging.INFO, f"{folders.manifests / 'alertmanager.yml'}: not a Kubernetes manifest "
                          "(no apiVersion, no kind); ignored") in said
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert ("default", "shop") in folders.engine.agreements


def test_a_window_with_no_occurrence_ahead_is_logged_in_words(
        caplog: pytest.LogCaptureFixture) -> None:
    from sla_operator.local.store import _log_transitions
    from sla_operator.store.base import Kind

    with caplog.at_level(logging.INFO, logger="sla_operator.local"):
        _log_transitions(Kind.MAINTENANCE, ("shop", "db-upgrade"), {},
                         {"active": False, "nextStart": None})
    assert caplog.messages == ["maintenance shop/db-upgrade: not active, no occurrence ahead "
                               "(it is over)"]
