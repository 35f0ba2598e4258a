"""Pieces the benchmark phases share: the target process, endpoints, CPU readings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sla_operator.domain.model import Endpoint, HttpProbe, Incident
from sla_operator.store.base import Key, Kind

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """The HTTP target process and the loopback ports it listens on."""

    process: subprocess.Popen[bytes]
    ports: list[int]

    @classmethod
    def start(cls, port_count: int = 8, cpu: int | None = None) -> Target:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.target", str(port_count)], stdout=subprocess.PIPE
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.kill()
            raise RuntimeError("the benchmark target did not start")
        if cpu is not None:
            os.sched_setaffinity(process.pid, {cpu})
        return cls(process, list(json.loads(line)["ports"]))

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index % len(self.ports)]}/"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def http_endpoints(target_urls: list[str], count: int, interval: float) -> list[Endpoint]:
    """``count`` HTTP endpoints spread over the target's ports, all probed every ``interval``."""
    timeout = min(interval * 0.8, 5.0)
    return [
        Endpoint(
            name=f"endpoint-{index}",
            probe=HttpProbe(url=target_urls[index % len(target_urls)]),
            interval=timedelta(seconds=interval),
            timeout=timedelta(seconds=timeout),
        )
        for index in range(count)
    ]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces; the fields after its closing parenthesis do not.
        fields = stat.read().rsplit(")", 1)[1].split()
    user_ticks, system_ticks = int(fields[11]), int(fields[12])
    return (user_ticks + system_ticks) / CLOCK_TICKS


def quantile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


class QuietStore:
    """A store for benchmarks of the engine alone: incidents are taken as they are, secrets
    are empty, events go nowhere; a subclass decides what a status write does."""

    async def write_status(self, kind: Kind, key: Key, status: Mapping[str, Any]) -> None:
        return None

    async def create_incident(self, incident: Incident, owner_uid: str | None) -> Incident:
        return incident

    async def change_incident(self, incident: Incident, change: Any) -> Incident:
        return incident

    async def read_secret(self, namespace: str, name: str, key: str) -> str:
        return ""

    async def record_event(self, kind: Kind, key: Key, reason: str, message: str,
                           warning: bool = False) -> None:
        return None
