"""`sla-operator local` refuses folders it cannot work with, before it starts anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from sla_operator.cli import main


def test_a_missing_manifests_folder_is_an_error_naming_it(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["local", "--manifests", str(tmp_path / "nowhere"), "--state", str(tmp_path / "s")])
    assert code == 2
    assert f"--manifests {tmp_path / 'nowhere'}: no such folder" in capsys.readouterr().err


def test_a_state_folder_inside_the_manifests_folder_is_refused(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["local", "--manifests", str(tmp_path), "--state", str(tmp_path / "state")])
    assert code == 2
    assert "would be read as manifests" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_a_state_path_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "state").write_text("")
    assert main(["local", "--manifests", str(tmp_path / "manifests"),
                 "--state", str(tmp_path / "state")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
