"""One simulated Kubernetes control plane: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok, on 127.0.0.1.

Everything is real but the kubelet: kwok plays the nodes, marks them Ready and
makes the pods the real scheduler binds to them Running and Ready. The
controller manager runs the ServiceAccount token controller, Deployments ->
ReplicaSets -> Pods, garbage collection and namespace deletion. RBAC is
enforced. Each process is started in its own session so that it outlives the
`theater sim up` command; its pid is kept in the state file for `down`.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from sim.certs import ClusterPki, client_cert, load_pki, make_pki


class SimError(RuntimeError):
    """The simulation could not start or stop; the message says why and what to do."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    kwok: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port())


@dataclass
class ControlPlane:
    name: str
    directory: Path
    ports: Ports
    service_cidr: str
    pids: dict[str, int] = field(default_factory=dict)
    # More IP SANs of the API server: where a real node's pods reach it (sim/node.py).
    api_ips: list[str] = field(default_factory=list)

    # --- paths ---------------------------------------------------------------

    @property
    def pki(self) -> ClusterPki:
        return load_pki(self.directory / "pki")

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.directory / "admin.kubeconfig"

    def log(self, process: str) -> Path:
        return self.directory / "logs" / f"{process}.log"

    def to_state(self) -> dict:
        return {
            "name": self.name, "directory": str(self.directory), "ports": asdict(self.ports),
            "service_cidr": self.service_cidr, "pids": self.pids, "api_ips": self.api_ips,
        }

    @classmethod
    def from_state(cls, data: dict) -> ControlPlane:
        return cls(data["name"], Path(data["directory"]), Ports(**data["ports"]), data["service_cidr"],
                   dict(data["pids"]), list(data.get("api_ips", [])))

    @property
    def service_ip(self) -> str:
        """The `kubernetes` Service's ClusterIP: the first address of the Service range."""
        return str(ipaddress.ip_network(self.service_cidr)[1])

    # --- start ---------------------------------------------------------------

    def prepare(self) -> None:
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        make_pki(self.directory / "pki", self.name, extra_ips=(self.service_ip, *self.api_ips))
        pki = self.pki
        # The API server's client certificate for kubelets (logs, exec, port-forward).
        client_cert(pki, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters")
        self.admin_kubeconfig.write_text(
            kubeconfig_text({self.name: (self.server, pki)}, current=self.name)
        )

    def _spawn(self, process: str, argv: list[str], env: dict[str, str]) -> None:
        out = self.log(process).open("ab")
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True, cwd=self.directory)
        except FileNotFoundError as exc:
            raise SimError(f"{argv[0]} is not available: run `uv run theater tools build`") from exc
        finally:
            out.close()
        self.pids[process] = proc.pid

    def start(self, binaries: dict[str, str], env: dict[str, str]) -> None:
        pki, p = self.pki, self.ports
        kubeconfig = str(self.admin_kubeconfig)
        self._spawn("etcd", [
            binaries["etcd"], f"--name={self.name}", f"--data-dir={self.directory / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{p.etcd_client}",
            f"--advertise-client-urls=http://127.0.0.1:{p.etcd_client}",
            f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-cluster={self.name}=http://127.0.0.1:{p.etcd_peer}",
            "--listen-metrics-urls=", "--log-level=warn", "--quota-backend-bytes=1073741824",
            "--unsafe-no-fsync",
        ], env)
        self._wait_port(p.etcd_client, "etcd", 30)
        self._spawn("kube-apiserver", [
            binaries["kube-apiserver"],
            f"--etcd-servers=http://127.0.0.1:{p.etcd_client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={p.apiserver}",
            f"--tls-cert-file={pki.server_crt}", f"--tls-private-key-file={pki.server_key}",
            f"--client-ca-file={pki.ca_crt}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--authorization-mode=RBAC", "--allow-privileged=true",
            "--endpoint-reconciler-type=none", "--enable-priority-and-fairness=false",
            # Real nodes (sim/node.py): the kubelet is reached at the node's InternalIP, with a client certificate.
            f"--kubelet-client-certificate={self.directory / 'pki' / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={self.directory / 'pki' / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--profiling=false", "--v=1",
        ], env)
        self.wait_ready(90)
        self._spawn("kube-controller-manager", [
            binaries["kube-controller-manager"], f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            f"--service-account-private-key-file={pki.sa_key}", f"--root-ca-file={pki.ca_crt}",
            "--use-service-account-credentials=true", "--leader-elect=false", "--secure-port=0",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
            # On a loaded machine kwok's heartbeats came late; with a 60 s grace the node lifecycle controller
            # marked the nodes NotReady and every pod Ready=False, which kwok never sets back (Deployments
            # stayed 0/1). Fake nodes do not fail, so give them an hour.
            "--node-monitor-grace-period=3600s", "--profiling=false", "--v=1",
        ], env)
        self._spawn("kube-scheduler", [
            binaries["kube-scheduler"], f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false", "--secure-port=0", "--profiling=false", "--v=1",
        ], env)
        self._spawn("kwok", [
            binaries["kwok"], f"--kubeconfig={kubeconfig}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.0/16", "--node-ip=127.0.0.1",
            f"--server-address=127.0.0.1:{p.kwok}",
        ], env)

    # --- readiness -----------------------------------------------------------

    def client(self, timeout: float = 10.0) -> httpx.Client:
        pki = self.pki
        tls = ssl.create_default_context(cafile=str(pki.ca_crt))
        tls.load_cert_chain(str(pki.admin_crt), str(pki.admin_key))
        return httpx.Client(base_url=self.server, verify=tls, timeout=timeout, trust_env=False)

    def _alive(self, process: str) -> bool:
        pid = self.pids.get(process)
        if pid is None:
            return False
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            waited = 0  # not our child (a later `down`): fall back to kill(0)
        if waited == pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _died(self, process: str) -> SimError:
        tail = "\n".join(self.log(process).read_text(errors="replace").splitlines()[-12:])
        return SimError(f"{self.name}: {process} exited (log: {self.log(process)}):\n{tail}")

    def _wait_port(self, port: int, process: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(process):
                raise self._died(process)
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise SimError(f"{self.name}: {process} did not listen on {port} within {timeout:.0f}s")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self._alive("kube-apiserver"):
                raise self._died("kube-apiserver")
            try:
                with self.client(timeout=2) as c:
                    r = c.get("/readyz")
                    if r.status_code == 200:
                        return
                    last = r.text[-300:]
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.3)
        raise SimError(f"{self.name}: kube-apiserver not ready within {timeout:.0f}s: {last}")

    def check_processes(self) -> None:
        for process in self.pids:
            if not self._alive(process):
                raise self._died(process)

    # --- stop ----------------------------------------------------------------

    def stop(self, grace: float = 10.0) -> list[str]:
        """SIGTERM each process group in the reverse order of starting (etcd last: an API server
        whose etcd is gone took 15 s to exit), SIGKILL what is left. Returns what had to be killed."""
        deadline = time.monotonic() + grace
        killed = []
        for name, pid in reversed(list(self.pids.items())):
            _signal_group(pid, signal.SIGTERM)
            while time.monotonic() < deadline and _exists(pid):
                time.sleep(0.05)
            if _exists(pid):
                _signal_group(pid, signal.SIGKILL)
                killed.append(name)
        for pid in self.pids.values():
            _reap(pid)
        return killed


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exists(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def kubeconfig_text(clusters: dict[str, tuple[str, ClusterPki]], current: str) -> str:
    """A kubeconfig with one context per cluster, named after it, with admin credentials."""
    import base64

    import yaml

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": current, "preferences": {},
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_crt)}}
            for name, (server, pki) in clusters.items()
        ],
        "users": [
            {"name": f"{name}-admin", "user": {
                "client-certificate-data": b64(pki.admin_crt), "client-key-data": b64(pki.admin_key)}}
            for name, (server, pki) in clusters.items()
        ],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}
            for name in clusters
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)
