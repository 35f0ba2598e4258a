"""A real Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager) on loopback.

End-to-end tests need an API server that really validates CRD schemas, serves the status
subresource, enforces RBAC and garbage-collects owned objects; no container runtime is
available, so the binaries are built once from Debian's source package by
``scripts/build-control-plane.sh`` and started here as plain processes.

Standard library only, so it also works outside pytest::

    with ControlPlane() as cp:
        subprocess.run(["kubectl", "--kubeconfig", cp.kubeconfig, "get", "ns"])
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-control-plane.sh"

ADMIN_USER = "admin"
RESTRICTED_USER = "sla-operator-restricted"
REPLICA_USERS = ("replica-a", "replica-b")
# Metadata of every write to the operator's kinds, Events and Leases; nothing else.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete]
  resources:
  - group: sla.dev
  - group: ""
    resources: [events]
  - group: coordination.k8s.io
- level: None
"""

_BINARIES = ("kube-apiserver", "kube-controller-manager")


class ControlPlaneError(RuntimeError):
    pass


class _PortTaken(ControlPlaneError):
    """A free port was taken by another process between choosing it and binding it."""


def cache_dir() -> Path:
    return Path(os.environ.get("SLA_K8S_CACHE") or Path.home() / ".cache" / "sla-operator" / "k8s")


def _find_etcd() -> str | None:
    return shutil.which("etcd") or (os.path.exists("/usr/bin/etcd") and "/usr/bin/etcd") or None


def _recipe_matches(bin_dir: Path) -> bool:
    """Cached binaries count only if built by the build script's current recipe."""
    script = BUILD_SCRIPT.read_text()
    wanted = re.search(r'^RECIPE="(.*)"$', script, re.MULTILINE)
    recipe = bin_dir / ".recipe"
    return bool(wanted) and recipe.is_file() and recipe.read_text().strip() == wanted.group(1)


def find_binaries() -> dict[str, str] | None:
    """Paths of etcd, kube-apiserver and kube-controller-manager, or None if any is missing."""
    bin_dir = cache_dir() / "bin"
    if not _recipe_matches(bin_dir):
        return None
    found = {name: str(bin_dir / name) for name in _BINARIES if os.access(bin_dir / name, os.X_OK)}
    etcd = _find_etcd()
    if etcd:
        found["etcd"] = etcd
    return found if len(found) == len(_BINARIES) + 1 else None


def ensure_binaries() -> dict[str, str]:
    """Return ``{"etcd": ..., "kube-apiserver": ..., "kube-controller-manager": ...}``.

    Runs the build script when something is missing (several minutes, once per machine);
    its progress is echoed to stderr.
    """
    found = find_binaries()
    if found:
        return found
    how = (
        f"Build it with: bash {BUILD_SCRIPT} (as root or with sudo; needs Debian's apt "
        f"repositories; about 5 minutes on 2 cores; binaries go to {cache_dir() / 'bin'}), "
        "or point KUBECONFIG at an existing cluster."
    )
    if not BUILD_SCRIPT.is_file():
        raise ControlPlaneError(f"control plane binaries are missing and {BUILD_SCRIPT} is absent. {how}")
    print(f"[controlplane] binaries missing, running {BUILD_SCRIPT}", file=sys.stderr, flush=True)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    proc = subprocess.Popen(
        ["bash", str(BUILD_SCRIPT)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        tail.append(line.rstrip("\n"))
        print(line, end="", file=sys.stderr, flush=True)
    rc = proc.wait()
    found = find_binaries()
    if rc != 0 or not found:
        raise ControlPlaneError(
            f"building the control plane failed (exit code {rc}). {how}\n"
            "Last lines of the build output:\n" + "\n".join(tail)
        )
    return found


def _free_ports(count: int) -> list[int]:
    # All sockets stay open until every port is chosen, so the ports are distinct.
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(data.splitlines()[-lines:])


def _die_with_parent() -> None:
    # Children get SIGTERM if the test process is killed hard, so no apiserver outlives it.
    # PR_SET_PDEATHSIG follows the forking *thread*, hence only used from the main thread.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _kubeconfig_text(server: str, user: str, token: str, context: str) -> str:
    # YAML written by hand to stay stdlib-only; values are quoted so tokens never need escaping.
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f'- name: "{context}"\n'
        "  cluster:\n"
        f'    server: "{server}"\n'
        "    insecure-skip-tls-verify: true\n"
        "users:\n"
        f'- name: "{user}"\n'
        "  user:\n"
        f'    token: "{token}"\n'
        "contexts:\n"
        f'- name: "{context}"\n'
        "  context:\n"
        f'    cluster: "{context}"\n'
        f'    user: "{user}"\n'
        '    namespace: "default"\n'
        f'current-context: "{context}"\n'
    )


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on free 127.0.0.1 ports.

    Attributes after :meth:`start`:
      ``kubeconfig``             admin kubeconfig path (user ``admin`` in ``system:masters``)
      ``restricted_kubeconfig``  kubeconfig of ``sla-operator-restricted`` (no RBAC bindings)
      ``server``                 ``https://127.0.0.1:PORT``
      ``workdir``                temp dir holding data, keys, kubeconfigs and ``*.log``
      ``admin_token``, ``restricted_token``, ``restricted_user``, ``binaries``
      ``startup_seconds``        time from launching etcd to a ready API server
    """

    restricted_user = RESTRICTED_USER

    def __init__(
        self,
        *,
        ready_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        keep_workdir: bool | None = None,
        binaries: dict[str, str] | None = None,
    ) -> None:
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        # SLA_K8S_KEEP_WORKDIR=1 keeps logs and data after a run for post-mortems.
        self.keep_workdir = (
            keep_workdir if keep_workdir is not None else os.environ.get("SLA_K8S_KEEP_WORKDIR") == "1"
        )
        self.binaries = binaries
        self.workdir: str = ""
        self.kubeconfig: str = ""
        self.restricted_kubeconfig: str = ""
        self.server: str = ""
        self.admin_token: str = ""
        self.restricted_token: str = ""
        self.startup_seconds: float | None = None
        self.replica_kubeconfigs: dict[str, str] = {}
        self.audit_log: str = ""
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._logs: dict[str, Path] = {}
        self._log_files: list[IO[bytes]] = []

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        if self._procs:
            raise ControlPlaneError("control plane already started")
        if self.binaries is None:
            self.binaries = ensure_binaries()
        self.workdir = tempfile.mkdtemp(prefix="sla-k8s-")
        atexit.register(self.stop)
        try:
            # Parallel test sessions on one machine can race for the ports chosen here.
            for attempt in range(3):
                self._prepare()
                t0 = time.monotonic()
                self._launch()
                try:
                    self._wait_ready()
                except _PortTaken:
                    if attempt == 2:
                        raise
                    self._terminate()
                    continue
                self._launch_controllers()
                self.startup_seconds = time.monotonic() - t0
                break
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the processes (SIGTERM, then SIGKILL after ``stop_timeout``) and remove the workdir."""
        atexit.unregister(self.stop)
        self._terminate()
        if self.workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _terminate(self) -> None:
        # Reverse start order: the controller-manager and apiserver still need etcd while exiting.
        for _name, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self._procs.clear()
        for f in self._log_files:
            f.close()
        self._log_files.clear()

    def audit(self) -> list[dict[str, Any]]:
        """The API server's audit entries so far: writes to sla.dev, Events and Leases."""
        entries = []
        try:
            with open(self.audit_log, encoding="utf-8") as lines:
                for line in lines:
                    try:
                        entries.append(json.loads(line))
                    except ValueError:
                        continue  # a line still being written
        except FileNotFoundError:
            pass
        return entries

    def log_path(self, name: str) -> str:
        """Log file of ``etcd``, ``kube-apiserver`` or ``kube-controller-manager``."""
        return str(self._logs[name])

    # -- internals ------------------------------------------------------------------------

    def _prepare(self) -> None:
        wd = Path(self.workdir)
        shutil.rmtree(wd / "etcd", ignore_errors=True)
        (wd / "etcd").mkdir(mode=0o700)
        (wd / "certs").mkdir(exist_ok=True)
        self.etcd_port, self.etcd_peer_port, self.port = _free_ports(3)
        self.server = f"https://127.0.0.1:{self.port}"

        # Service account signing keys: required flags since 1.20, even though no pod runs.
        subprocess.run(
            ["openssl", "genrsa", "-out", str(wd / "sa.key"), "2048"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "rsa", "-in", str(wd / "sa.key"), "-pubout", "-out", str(wd / "sa.pub")],
            check=True,
            capture_output=True,
        )

        self.admin_token = secrets.token_hex(24)
        self.restricted_token = secrets.token_hex(24)
        replica_tokens = {user: secrets.token_hex(24) for user in REPLICA_USERS}
        # token,user,uid[,"groups"]; the restricted user gets only system:authenticated,
        # so anything it may do must come from RBAC bindings a test creates. Each replica
        # user is a writer of its own, so the audit log says which replica wrote what.
        (wd / "tokens.csv").write_text(
            f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'
            f"{self.restricted_token},{RESTRICTED_USER},{RESTRICTED_USER}\n"
            + "".join(f'{token},{user},{user},"system:masters"\n'
                      for user, token in replica_tokens.items())
        )
        self.replica_kubeconfigs = {}
        for user, token in replica_tokens.items():
            path = wd / f"kubeconfig-{user}"
            path.write_text(_kubeconfig_text(self.server, user, token, f"sla-e2e-{user}"))
            os.chmod(path, 0o600)
            self.replica_kubeconfigs[user] = str(path)
        self.audit_log = str(wd / "audit.log")
        (wd / "audit-policy.yaml").write_text(AUDIT_POLICY)
        os.chmod(wd / "tokens.csv", 0o600)

        self.kubeconfig = str(wd / "kubeconfig")
        self.restricted_kubeconfig = str(wd / "kubeconfig-restricted")
        admin = _kubeconfig_text(self.server, ADMIN_USER, self.admin_token, "sla-e2e")
        Path(self.kubeconfig).write_text(admin)
        Path(self.restricted_kubeconfig).write_text(
            _kubeconfig_text(self.server, RESTRICTED_USER, self.restricted_token, "sla-e2e-restricted")
        )
        os.chmod(self.kubeconfig, 0o600)
        os.chmod(self.restricted_kubeconfig, 0o600)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = Path(self.workdir) / f"{name}.log"
        self._logs[name] = log
        f = open(log, "wb")  # noqa: SIM115 - stays open for the process's lifetime, closed in _terminate
        self._log_files.append(f)
        in_main = threading.current_thread() is threading.main_thread()
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            preexec_fn=_die_with_parent if in_main else None,
        )
        self._procs.append((name, proc))
        return proc

    def _launch(self) -> None:
        wd = Path(self.workdir)
        b = self.binaries
        assert b is not None
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn(
            "etcd",
            [
                b["etcd"],
                "--name=sla-e2e",
                f"--data-dir={wd / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=sla-e2e={peer_url}",
            ],
        )
        self._spawn(
            "kube-apiserver",
            [
                b["kube-apiserver"],
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.port}",
                # Otherwise it advertises the machine's first interface address.
                "--advertise-address=127.0.0.1",
                f"--cert-dir={wd / 'certs'}",
                f"--token-auth-file={wd / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={wd / 'sa.pub'}",
                f"--service-account-signing-key-file={wd / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--disable-admission-plugins=ServiceAccount",
                # No kubelet or network here; a loopback endpoint for the kubernetes Service
                # is rejected by validation and would only fill the log with errors.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                # Who wrote what (fencing, shards, least privilege): one JSON line per write.
                f"--audit-policy-file={wd / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-mode=blocking",
            ],
        )

    def _launch_controllers(self) -> None:
        # Only once the API server is ready: the controller-manager gives up after 10 s of an
        # unhealthy API server, which a loaded machine's start-up can take.
        b = self.binaries
        assert b is not None
        self._spawn(
            "kube-controller-manager",
            [
                b["kube-controller-manager"],
                f"--kubeconfig={self.kubeconfig}",
                "--controllers=garbagecollector,namespace",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                # No serving ports: nothing scrapes it, and fixed defaults (10252/10257) would collide.
                "--port=0",
                "--secure-port=0",
                "--profiling=false",
            ],
        )

    def _get(self, path: str) -> tuple[int, str]:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        req = urllib.request.Request(self.server + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer yet"
        while True:
            for name, proc in self._procs:
                if proc.poll() is not None:
                    if "address already in use" in _tail(self._logs[name]):
                        raise _PortTaken(f"{name}: {_tail(self._logs[name], 3)}")
                    raise ControlPlaneError(
                        f"{name} exited with code {proc.returncode} during startup.\n"
                        f"--- tail of {self._logs[name]} ---\n{_tail(self._logs[name])}"
                    )
            try:
                status, body = self._get("/readyz")
                if status == 200 and body.strip() == "ok":
                    # kubectl apply into "default" fails until the apiserver has created it.
                    status, body = self._get("/api/v1/namespaces/default")
                    if status == 200:
                        return
                last = f"HTTP {status}: {body.strip()[-500:]}"
            except (OSError, ssl.SSLError) as e:
                last = repr(e)
            if time.monotonic() > deadline:
                apiserver_log = self._logs["kube-apiserver"]
                raise ControlPlaneError(
                    f"kube-apiserver at {self.server} not ready after {self.ready_timeout:.0f}s "
                    f"(last: {last}).\n--- tail of {apiserver_log} ---\n{_tail(apiserver_log)}\n"
                    f"--- tail of {self._logs['etcd']} ---\n{_tail(self._logs['etcd'], 10)}"
                )
            time.sleep(0.25)


if __name__ == "__main__":
    # Manual use: start a control plane and keep it running until Ctrl-C.
    with ControlPlane() as cp:
        print(f"ready in {cp.startup_seconds:.1f}s\nexport KUBECONFIG={cp.kubeconfig}\nworkdir: {cp.workdir}")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
