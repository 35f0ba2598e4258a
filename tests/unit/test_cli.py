"""The command line: help for every command, and bad options refused on stderr."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sla_operator.cli import _settings, build_parser, main
from sla_operator.domain.shards import Sharding
from sla_operator.settings import Settings


def commands() -> list[str]:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(subparsers.choices)


def test_the_command_line_offers_the_commands_of_the_contract() -> None:
    assert {"run", "local", "demo-target", "report"} <= set(commands())


@pytest.mark.parametrize("command", [[], *[[name] for name in commands()]],
                         ids=lambda c: " ".join(c) or "sla-operator")
def test_help_of_every_command_exits_zero(command: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: sla-operator {' '.join(command)}".rstrip())


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sla_operator", *args], capture_output=True,
                          text=True, timeout=60, check=False, env=env)


@pytest.mark.parametrize("command", ["run", "local"])
@pytest.mark.parametrize("option", ["--deny-cidr", "--allow-cidr"])
def test_a_bad_cidr_exits_non_zero_with_a_clear_message_on_stderr(
        command: str, option: str, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--manifests", "m", "--state", "s"] if command == "local" else []
    with pytest.raises(SystemExit) as exited:
        main([command, *extra, option, "10.0.0.300/8"])
    assert exited.value.code != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (f"sla-operator {command}: error: argument {option}: '10.0.0.300/8' is not a CIDR "
            "range (e.g. 10.0.0.0/8)") in captured.err


def test_the_program_refuses_a_bad_cidr_with_a_non_zero_exit_status() -> None:
    finished = run_cli("run", "--deny-cidr", "metadata")
    assert finished.returncode != 0
    assert finished.stdout == ""
    assert "argument --deny-cidr: 'metadata' is not a CIDR range" in finished.stderr


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_port_exits_non_zero(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--metrics-port", port])
    assert exited.value.code != 0
    assert "--metrics-port" in capsys.readouterr().err


def test_no_command_exits_non_zero_and_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code != 0
    assert "COMMAND" in capsys.readouterr().err


def test_the_version_is_printed() -> None:
    finished = run_cli("--version")
    assert finished.returncode == 0
    assert finished.stdout.startswith("sla-operator ")


def test_run_without_a_usable_kubeconfig_exits_at_once_with_one_line_on_stderr(
        tmp_path: Path) -> None:
    # Outside a Pod: no service host, so only the (missing) kubeconfig could configure it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env["KUBECONFIG"] = str(tmp_path / "missing-kubeconfig")
    finished = run_cli("run", "--metrics-port", "0", env=env)  # before: retried forever
    assert finished.returncode == 1
    assert finished.stdout == ""
    errors = [line for line in finished.stderr.splitlines() if line.startswith("sla-operator")]
    assert errors == [f"sla-operator run: no Kubernetes configuration: not running in a "
                      f"cluster, and KUBECONFIG={env['KUBECONFIG']} names no existing file"]
    assert "Traceback" not in finished.stderr


def test_run_with_an_unreadable_kubeconfig_names_the_file_and_the_fault(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("clusters: [\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env["KUBECONFIG"] = str(broken)
    finished = run_cli("run", "--metrics-port", "0", env=env)
    assert finished.returncode == 1
    (error,) = [line for line in finished.stderr.splitlines() if line.startswith("sla-operator")]
    assert error.startswith(f"sla-operator run: no usable Kubernetes configuration in "
                            f"KUBECONFIG={broken}: ")
    assert "Traceback" not in finished.stderr


def test_run_and_local_document_the_status_page_port() -> None:
    for command in ("run", "local"):
        finished = run_cli(command, "--help")
        assert finished.returncode == 0
        flattened = " ".join(finished.stdout.split())
        assert "--status-port" in flattened and "/api/v1/status" in flattened
        assert "0 disables" in flattened


def run_settings(*args: str) -> Settings:
    return _settings(build_parser().parse_args(["run", *args]))


def test_each_shard_takes_its_own_lease() -> None:
    assert run_settings("--leader-elect").lease.name == "sla-operator"  # type: ignore[union-attr]
    sharded = run_settings("--leader-elect", "--shards", "3", "--shard", "2")
    assert sharded.sharding == Sharding(3, 2)
    assert sharded.lease is not None and sharded.lease.name == "sla-operator-shard-2"
    named = run_settings("--leader-elect", "--leader-elect-lease", "slas", "--shards", "2")
    assert named.lease is not None and named.lease.name == "slas-shard-0"
    assert run_settings().sharding == Sharding(1, 0)


@pytest.mark.parametrize(("flags", "message"), [
    (["--shards", "2", "--shard", "2"], "--shard must be in 0..1 with --shards 2, got 2"),
    (["--shard", "1"], "--shard must be in 0 with --shards 1, got 1"),
    (["--shards", "0"], "--shards must be at least 1, got 0"),
])
def test_a_shard_outside_the_shards_is_refused_on_stderr(
        flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *flags]) == 2  # a flag's value that cannot be used, as argparse's own
    assert f"sla-operator run: {message}" in capsys.readouterr().err


def test_a_shard_that_is_not_a_number_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--shards", "two"])
    assert exited.value.code != 0
    assert "argument --shards: 'two' is not a whole number" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["run"], ["local", "--manifests", "m", "--state", "s"]],
                         ids=lambda c: c[0])
def test_endpoint_histograms_follow_the_fleet_size_unless_told(command: list[str]) -> None:
    parser = build_parser()
    assert _settings(parser.parse_args(command)).endpoint_histograms is None  # auto
    for given, meant in ((["--endpoint-histograms"], True), (["--endpoint-histograms=on"], True),
                         (["--endpoint-histograms=off"], False),
                         (["--endpoint-histograms", "auto"], None)):
        assert _settings(parser.parse_args([*command, *given])).endpoint_histograms is meant


def test_a_wrong_endpoint_histograms_value_names_the_choices(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--endpoint-histograms=yes"])
    assert "invalid choice: 'yes' (choose from 'auto', 'on', 'off')" in capsys.readouterr().err


def test_probe_takes_the_contracts_synopsis_including_leader_elect() -> None:
    """API.md: `probe --location NAME [--namespace NS]... [--metrics-port 9090]
    [--leader-elect ...]`; the election is always on (the Lease is the heartbeat)."""
    args = build_parser().parse_args(
        ["probe", "--location", "b", "--namespace", "payments", "--metrics-port", "9091",
         "--leader-elect", "--leader-elect-namespace", "sla-system",
         "--leader-elect-lease-duration", "15s"])
    assert (args.location, args.namespace, args.metrics_port) == ("b", ["payments"], 9091)
    assert args.leader_elect is True and args.leader_elect_namespace == "sla-system"
