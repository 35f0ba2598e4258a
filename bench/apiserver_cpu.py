"""The control plane's own CPU, read from /proc: what the cluster benchmark charges the operator.

Only a control plane on this machine can be read (the local one the benchmark starts); for a
cluster of KUBECONFIG elsewhere every reading is None and the report says "not measured".
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bench.common import process_cpu_seconds

WATCHED = ("kube-apiserver", "etcd")


def control_plane_pids(processes: Iterable[tuple[str, object]]) -> dict[str, int]:
    """The pids of the local control plane's kube-apiserver and etcd, from its
    ``(name, Popen)`` pairs (``ControlPlane._procs``); those not running are left out."""
    pids: dict[str, int] = {}
    for name, process in processes:
        pid = getattr(process, "pid", None)
        poll = getattr(process, "poll", None)
        if name in WATCHED and isinstance(pid, int) and (poll is None or poll() is None):
            pids[name] = pid
    return pids


def cpu_seconds(pids: Mapping[str, int]) -> dict[str, float]:
    """Each process's user + system CPU so far; one that has gone is left out."""
    readings: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            readings[name] = process_cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue
    return readings


@dataclass(frozen=True)
class CpuWindow:
    """CPU seconds each process spent over ``seconds`` of wall time."""

    seconds: float
    cpu: Mapping[str, float]

    def cores(self, name: str) -> float | None:
        """Mean cores ``name`` used over the window (None: not read)."""
        if name not in self.cpu or self.seconds <= 0:
            return None
        return self.cpu[name] / self.seconds


class CpuMeter:
    """Start, then ``stop()`` gives the window since; restartable."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._start: dict[str, float] = {}
        self._at = 0.0

    @property
    def available(self) -> bool:
        return bool(self.pids)

    def start(self) -> None:
        self._start, self._at = cpu_seconds(self.pids), time.monotonic()

    def stop(self) -> CpuWindow:
        now, readings = time.monotonic(), cpu_seconds(self.pids)
        used = {name: readings[name] - self._start[name]
                for name in readings if name in self._start}
        return CpuWindow(now - self._at, used)
