"""`sla-operator rules` on a folder: the rule file or the objects, invalid agreements skipped
with a line on stderr, and bad options refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sla_operator.cli import main

AGREEMENT = """\
apiVersion: sla.dev/v1alpha1
kind: ServiceLevelAgreement
metadata: {name: NAME, namespace: shop}
spec:
  service: Shop
  objective: "OBJECTIVE"
  endpoints: [{name: api, tcp: {host: 127.0.0.1, port: 9}}]
"""


def folder(tmp_path: Path, **objectives: str) -> Path:
    for name, objective in objectives.items():
        text = AGREEMENT.replace("NAME", name).replace("OBJECTIVE", objective)
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def test_the_rule_file_has_a_group_per_agreement(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--manifests", str(folder(tmp_path, cart="99.9", orders="99"))]) == 0
    groups = yaml.safe_load(capsys.readouterr().out)["groups"]
    assert [g["name"] for g in groups] == ["sla/shop/cart", "sla/shop/orders"]


def test_an_invalid_agreement_is_skipped_with_a_line_on_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--manifests", str(folder(tmp_path, cart="99.9", bad="100"))]) == 0
    out, err = capsys.readouterr()
    assert [g["name"] for g in yaml.safe_load(out)["groups"]] == ["sla/shop/cart"]
    assert "bad.yaml" in err and "skipped" in err


def test_prometheusrule_objects_carry_the_rule_labels(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--manifests", str(folder(tmp_path, cart="99.9")), "-o",
                 "prometheusrule", "--rule-label", "release=prometheus"]) == 0
    [rule] = yaml.safe_load_all(capsys.readouterr().out)
    assert rule["metadata"]["name"] == "cart-sla"
    assert rule["metadata"]["labels"]["release"] == "prometheus"


def test_a_missing_folder_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--manifests", str(tmp_path / "nowhere")]) == 2  # as local: a usage error
    assert "no such folder" in capsys.readouterr().err


@pytest.mark.parametrize("label", ["release", "=prometheus"])
def test_a_rule_label_must_be_key_equals_value(label: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rules", "--rule-label", label])
    assert exited.value.code == 2
    assert "is not a label (K=V" in capsys.readouterr().err
