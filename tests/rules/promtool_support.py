"""Running Debian's promtool on the generated rules, with synthetic series per agreement."""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from sla_operator.domain.alerts import rule_file
from sla_operator.domain.model import Agreement

REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = "run `bash scripts/install-prometheus.sh` as root (make test does)"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is missing: {INSTALL_HINT}")
    return found


def labels_of(agreement: Agreement, **extra: str) -> str:
    labels = {"namespace": agreement.namespace, "agreement": agreement.name,
              "service": agreement.service, "environment": agreement.environment.value,
              "job": "sla-operator", "instance": "10.0.0.7:9090", **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def steps(*parts: tuple[float, int]) -> str:
    """A counter rising by ``rate`` per step for ``count`` steps, part after part, from 0:
    ``steps((60, 30), (0, 10))`` rises 60 a step for 30 steps, then stays flat for 10."""
    values, current = ["0"], 0.0
    for rate, count in parts:
        if count <= 0:
            continue
        values.append(f"{_num(current + rate)}+{_num(rate)}x{count - 1}")
        current += rate * count
    return " ".join(values)


def _num(value: float) -> str:
    return repr(round(value, 6))


@dataclass
class Scenario:
    """One promtool test: series of one agreement, and the alerts expected at given times."""

    agreement: Agreement
    series: dict[str, str] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def add(self, metric: str, values: str, **extra: str) -> Scenario:
        self.series[f"{metric}{labels_of(self.agreement, **extra)}"] = values
        return self

    def expect(self, minute: int, alertname: str, *alerts: dict[str, str]) -> Scenario:
        """Exactly ``alerts`` (their labels) of ``alertname`` fire at ``minute``."""
        self.checks.append({"eval_time": f"{minute}m", "alertname": alertname,
                            "exp_alerts": [{"exp_labels": dict(a)} for a in alerts]})
        return self


def without_annotations(rules: dict[str, Any]) -> dict[str, Any]:
    """promtool compares annotations exactly, and takes none expected for empty ones: tests of
    when alerts fire leave them out, and the test of the annotations checks them in full."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return rules


def run_promtool(tmp_path: Path, agreements: list[Agreement], scenarios: list[Scenario],
                 annotations: bool = False) -> subprocess.CompletedProcess[str]:
    rules = tmp_path / "rules.yml"
    generated = rule_file(agreements)
    rules.write_text(yaml.safe_dump(generated if annotations else without_annotations(generated),
                                    sort_keys=False))
    tests = {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": [
        {"interval": "1m",
         "input_series": [{"series": s, "values": v} for s, v in scenario.series.items()],
         "alert_rule_test": scenario.checks} for scenario in scenarios]}
    test_file = tmp_path / "tests.yml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    return subprocess.run([tool("promtool"), "test", "rules", test_file.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)


def engine_counters(healthy: int, down: int, seed: int = 20) -> tuple[str, str]:
    """``sla_downtime_seconds_total`` and ``sla_eligible_seconds_total`` sampled every minute,
    built the way the engine builds them: a round about every second adds the seconds since
    the last round (``timedelta.total_seconds()``, whole microseconds) to the eligible counter
    and, once the service is Down, the very same float to the downtime counter. The sums round
    differently, so over a fully Down window the two increases differ in their last bits.
    """
    rounds = random.Random(seed)
    downtime = eligible = 0.0
    clock = datetime(2024, 3, 1, tzinfo=UTC)
    start = clock
    values: tuple[list[str], list[str]] = (["0"], ["0"])
    for minute in range(1, healthy + down + 1):
        while clock < start + timedelta(minutes=minute) - timedelta(microseconds=1):
            now = min(clock + timedelta(seconds=1, microseconds=rounds.randint(0, 4000)),
                      start + timedelta(minutes=minute))
            seconds = (now - clock).total_seconds()
            eligible += seconds
            if minute > healthy:
                downtime += seconds
            clock = now
        values[0].append(repr(downtime))
        values[1].append(repr(eligible))
    return " ".join(values[0]), " ".join(values[1])
