"""The command line: help for every command, and bad options refused on stderr."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from sla_operator.cli import build_parser, main


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


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sla_operator", *args], capture_output=True,
                          text=True, timeout=60, check=False)


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
