"""`make run`: the demo target and local mode on examples/demo/, until Ctrl-C.

Starts `sla-operator demo-target` (127.0.0.1:8099, the address the demo manifests probe) and
`sla-operator local` as child processes, says where to look, and shows their log as it comes.
Ctrl-C or SIGTERM stops both, local mode first so its last writes complete.

Environment: SLA_DEMO_METRICS_PORT (9090), SLA_DEMO_STATUS_PORT (8080), SLA_DEMO_STATE
(.state/demo), SLA_DEMO_MANIFESTS (examples/demo) and SLA_DEMO_TARGET_PORT (8099, the port the
demo manifests probe: another one runs local mode on a copy of examples/demo/ that probes it).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DEMO_MANIFESTS = "examples/demo"
DEMO_TARGET_PORT = 8099  # the port examples/demo/ probes
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d),\d+ (\w+)\s+([\w.]+): (.*)$")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Children get SIGTERM if this script is killed outright, so none is left behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: Ctrl-C still stops both children
        return


def _start(*args: str, output: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "sla_operator", *args]
    return subprocess.Popen(
        command, cwd=ROOT, text=True, bufsize=1, start_new_session=True,
        preexec_fn=_die_with_parent,
        stdout=subprocess.PIPE if output == "stdout" else subprocess.DEVNULL,
        stderr=subprocess.PIPE if output == "stderr" else subprocess.STDOUT)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers themselves do: connections of an earlier run in TIME_WAIT are no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((HOST, port)) == 0


def _wait_listening(port: int, process: subprocess.Popen[str], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if _listening(port):
            return True
        time.sleep(0.1)
    return False


def _show(stream: IO[str]) -> None:
    """The children's log, shortened to `time  message` (warnings and errors keep their level)."""
    for raw in stream:
        line = raw.rstrip("\n")
        match = LOG_LINE.match(line)
        if match is None:
            print(line, flush=True)
            continue
        clock, level, _logger, message = match.groups()
        marker = "" if level == "INFO" else f"{level}: "
        print(f"{clock}  {marker}{message}", flush=True)


def _stop(process: subprocess.Popen[str], name: str) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop within 15 s; killing it", file=sys.stderr)
        process.kill()
        process.wait()


def main() -> int:
    target_port = int(os.environ.get("SLA_DEMO_TARGET_PORT", str(DEMO_TARGET_PORT)))
    metrics_port = int(os.environ.get("SLA_DEMO_METRICS_PORT", "9090"))
    status_port = int(os.environ.get("SLA_DEMO_STATUS_PORT", "8080"))
    state = os.environ.get("SLA_DEMO_STATE", ".state/demo")
    manifests = os.environ.get("SLA_DEMO_MANIFESTS", DEMO_MANIFESTS)
    for port, variable in ((target_port, "SLA_DEMO_TARGET_PORT"),
                           (metrics_port, "SLA_DEMO_METRICS_PORT"),
                           (status_port, "SLA_DEMO_STATUS_PORT")):
        if port and not _port_free(port):
            print(f"port {port} on {HOST} is in use: stop what listens there, or choose another "
                  f"port with {variable}=PORT", file=sys.stderr)
            return 1

    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, request_stop)

    if target_port != DEMO_TARGET_PORT and manifests == DEMO_MANIFESTS:
        # Beside the state, which stays: the statement and report hints work after a stop too.
        copy = Path(state) / f"manifests-for-port-{target_port}"
        copy.mkdir(parents=True, exist_ok=True)
        manifests = _probing(target_port, str(copy))
    target = _start("demo-target", "--host", HOST, "--port", str(target_port), output="stdout")
    local = None
    try:
        if not _wait_listening(target_port, target):
            print("the demo target did not start", file=sys.stderr)
            return 1
        local = _start("--log-level", "INFO", "local", "--manifests", manifests,
                       "--state", state, "--metrics-port", str(metrics_port),
                       "--status-port", str(status_port), "--status-interval", "5",
                       "--bind-address", HOST, output="stderr")
        readers = [threading.Thread(target=_show, args=(target.stdout,), daemon=True),
                   threading.Thread(target=_show, args=(local.stderr,), daemon=True)]
        for reader in readers:
            reader.start()
        _banner(local, manifests, state, {"target": target_port, "metrics": metrics_port,
                                          "status": status_port})
        while not stopping.is_set() and target.poll() is None and local.poll() is None:
            stopping.wait(0.5)
        if not stopping.is_set():
            print("a demo process stopped on its own; stopping the other", file=sys.stderr)
        return 0 if stopping.is_set() else 1
    finally:
        print("\nstopping local mode and the demo target ...", flush=True)
        if local is not None:
            _stop(local, "local mode")
        _stop(target, "the demo target")
        print(f"stopped; the state stays in {state}", flush=True)


def _probing(port: int, folder: str) -> str:
    """A copy of the demo manifests in ``folder`` that probes the demo target on ``port``."""
    for source in sorted((ROOT / DEMO_MANIFESTS).glob("*.yaml")):
        text = source.read_text(encoding="utf-8")
        Path(folder, source.name).write_text(
            text.replace(f"{HOST}:{DEMO_TARGET_PORT}", f"{HOST}:{port}"), encoding="utf-8")
    return folder


def _banner(local: subprocess.Popen[str], manifests: str, state: str, ports: dict[str, int]) -> None:
    for listener in ("status", "metrics"):
        if ports[listener]:
            _wait_listening(ports[listener], local)
    lines = ["", f"sla-operator demo: local mode on {manifests}/ against the demo target"]
    # The page is what a newcomer opens first: bars, incidents and their updates as they come.
    if ports["status"] and _listening(ports["status"]):
        lines.append(f"  status page  http://{HOST}:{ports['status']}/  (open it in a browser)")
    if ports["metrics"]:
        lines.append(f"  metrics      http://{HOST}:{ports['metrics']}/metrics")
    month = datetime.now(UTC).strftime("%Y-%m")
    lines += [f"  state        {state}/  (incidents/, status/: YAML you can read and edit)",
              f"  support      {state}/status/supportrequests/demo/  (due times of the requests"
              f" in {manifests}/support-requests.yaml)",
              f"  statement    sla-operator statement --manifests {manifests} --state {state}"
              f" --agreement demo-shop --period {month} -o markdown",
              f"  target       http://{HOST}:{ports['target']}/  (its schedule is printed above)",
              "  The first incident opens about 25 s after the start. Ctrl-C stops both.", ""]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
