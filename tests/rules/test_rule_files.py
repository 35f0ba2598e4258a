"""What users load: `sla-operator rules` on the examples passes `promtool check rules`, and the
Alertmanager example routes pages and tickets (amtool)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from promtool_support import REPO, tool

EXAMPLES = ("payments-api.yaml", "sandbox.yaml")
ALERTMANAGER = REPO / "examples" / "alertmanager" / "alertmanager.yml"


def rules_command(folder: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "sla_operator", "rules", "--manifests",
                             str(folder), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    for name in EXAMPLES:
        shutil.copy(REPO / "examples" / name, folder / name)
    return folder


def promtool_check(path: Path) -> str:
    result = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_rule_file_of_the_examples_passes_promtool(examples: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_command(examples))
    # payments-api: 7 recordings + 7 alerts (its long-term tier is off); the sandbox:
    # 7 recordings + 6 alerts (no pages).
    assert "SUCCESS: 27 rules found" in promtool_check(rules)


def test_the_prometheusrule_objects_hold_the_same_rules(examples: Path, tmp_path: Path) -> None:
    objects = list(yaml.safe_load_all(rules_command(examples, "-o", "prometheusrule",
                                                    "--rule-label", "release=prometheus")))
    assert [o["metadata"]["name"] for o in objects] == ["payments-api-sla", "payments-sandbox-sla"]
    for rule in objects:
        assert rule["kind"] == "PrometheusRule"
        assert rule["metadata"]["labels"] == {"release": "prometheus",
                                              "app.kubernetes.io/managed-by": "sla-operator"}
        spec = tmp_path / f"{rule['metadata']['name']}.yml"
        spec.write_text(yaml.safe_dump(rule["spec"]))
        promtool_check(spec)


def test_an_agreement_with_alerting_disabled_is_left_out(examples: Path) -> None:
    sandbox = (examples / "sandbox.yaml").read_text()
    disabled = sandbox.replace("  objective:", "  alerting: {enabled: false}\n  objective:")
    (examples / "sandbox.yaml").write_text(disabled)
    assert "payments-sandbox" not in rules_command(examples)


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("amtool"), *args], capture_output=True, text=True, timeout=60)


def test_the_alertmanager_example_is_valid() -> None:
    result = amtool("check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 inhibit rules" in result.stdout


@pytest.mark.parametrize(("severity", "receiver"), [("page", "pager"), ("ticket", "tickets")])
def test_the_alertmanager_example_routes_by_severity(severity: str, receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER}",
                    f"--verify.receivers={receiver}", f"severity={severity}",
                    "namespace=payments", "agreement=payments-api", "alertname=SLAErrorBudgetBurn")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_the_alertmanager_example_mutes_tickets_while_the_agreement_pages() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    assert config["route"]["group_by"] == ["namespace", "agreement"]
    assert config["inhibit_rules"] == [{"source_matchers": ['severity="page"'],
                                        "target_matchers": ['severity="ticket"'],
                                        "equal": ["namespace", "agreement"]}]
