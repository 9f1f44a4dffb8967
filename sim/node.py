"""One real Kubernetes node of a simulated cluster: containerd, kubelet,
kube-proxy and CoreDNS, in a network namespace the simulation creates.

kwok's nodes only pretend; on this node the pods' containers really run.

Network. Each real node gets its own network namespace (`ip netns add
theater<slot>-<cluster>`). Inside it:

- `eth0`, one end of a veth pair whose other end (`th<slot>-<cluster>`) is
  in the host namespace, with a private /30 and no route beyond it. The API
  server dials the kubelet there (logs, exec: `--kubelet-preferred-address-types
  =InternalIP`); the kubelet refuses a loopback node IP. An iptables rule of
  the node's namespace drops anything forwarded to or from eth0, so pods never
  reach the host through it.
- `cni0`, the pods' bridge (Debian's CNI plugins), no default route in the
  pods: they reach their bridge's subnet, the Service ClusterIPs and the API
  addresses below, nothing else. Nothing is NATed to the outside.
- the node's loopback also holds one address per simulated cluster, where
  sim/relay.py forwards to that cluster's API server on the host's 127.0.0.1.
  The `kubernetes` Service's endpoint is this cluster's address, and the other
  cluster's is what a stack sets as dashboardApiServer, so a pod reads both
  clusters like in the class' two real clusters.
- kube-proxy (iptables mode) and CoreDNS run here too: their rules and the
  net.* sysctls they set belong to this namespace. The host's are never
  touched.

Processes. `python -m sim.node supervise DIR` runs in that network namespace
and in a private mount namespace (nsenter + unshare). It hides the kernel
tunables the kubelet sets (kernel.panic, vm.overcommit_memory, ...) behind
regular files, puts /run under DIR (containerd's shim sockets, runc state),
then starts containerd (CRI, cgroupfs, `restrict_oom_score_adj` because this
machine withholds CAP_SYS_RESOURCE), imports the pause image, and starts the
kubelet, kube-proxy and CoreDNS. Everything the node runs, the supervisor, the
relay, the shims and every container, lives in one cgroup tree,
/sys/fs/cgroup/*/theater<slot>-<cluster>, which is the kubelet's cgroupRoot.
Stopping a node freezes that tree, kills every process in it, removes its
cgroups and deletes the network namespace (with it the veth pair, the bridge
and the pods' links). The mounts vanish with the mount namespace. This also
works after a killed `theater sim up`: the slot and the names are in the
state file before anything is made.

Files. A node's files are in /var/tmp/theater-sim/<slot>-<cluster> (a short
path: unix sockets), linked from the simulation's directory as <cluster>/node.

Slots. Each running simulation holds a slot (0-63) under /run/theater-sim; the
names and addresses derive from it, so two simulations never collide:
10.201.<slot>.0/24 holds the /30 links (.0/30 for the first cluster, .4/30 for
the second) and the API addresses (.128 + cluster index); pods of cluster i
get 10.(210+i).<slot>.0/24.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services import catalog
from sim.certs import ClusterPki, client_cert
from sim.commands import run

SLOT_ROOT = Path(os.environ.get("THEATER_SIM_SLOTS", "/run/theater-sim"))
# The nodes' files (containerd's root, the kubelet's, sockets) live at a short path on disk:
# a unix socket's path has at most 107 bytes, and a test's tmp directory is longer than that.
NODE_ROOT = Path(os.environ.get("THEATER_SIM_NODES", "/var/tmp/theater-sim"))
SLOTS = 64
CGROUP_ROOT = Path("/sys/fs/cgroup")
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"
CNI_BIN = Path("/usr/lib/cni")
DNS_PORT = 53
API_PORT = 443  # the port of the in-namespace API addresses (like a cloud's API endpoint)
# What the kubelet sets at start-up (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables).
KUBELET_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                   "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")
NEEDED_COMMANDS = {"containerd": "containerd", "containerd-shim-runc-v2": "containerd", "runc": "runc",
                   "ctr": "containerd", "ip": "iproute2", "iptables": "iptables", "nsenter": "util-linux",
                   "unshare": "util-linux", "mount": "mount", "gcc": "gcc",
                   # the simulation's registry (sim/registry.py), which real nodes pull from
                   "docker-registry": "docker-registry", "htpasswd": "apache2-utils"}
NODE_BINARIES = ("kubelet", "kube-proxy", "coredns")


class NodeError(RuntimeError):
    """A real node could not start or stop; the message says why and what to do."""


# --- what this machine must offer ---------------------------------------------------


def missing_requirements() -> list[str]:
    """What real nodes need and this machine lacks, as messages (empty: ready)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("real nodes need root (network namespaces, cgroups, mounts): run as root or use --real-nodes 0")
    absent = sorted({pkg for cmd, pkg in NEEDED_COMMANDS.items() if shutil.which(cmd) is None})
    if absent:
        problems.append(f"missing Debian packages: apt-get install {' '.join(absent)}")
    elif not Path(subprocess.run(["gcc", "-print-file-name=libc.a"], capture_output=True, text=True).stdout.strip()).is_absolute():
        problems.append("the pause container is linked statically: apt-get install libc6-dev")
    if not (CNI_BIN / "bridge").is_file() or not (CNI_BIN / "host-local").is_file():
        problems.append(f"no CNI plugins in {CNI_BIN}: apt-get install containernetworking-plugins")
    if not (CGROUP_ROOT / "pids").is_dir() or not (CGROUP_ROOT / "freezer").is_dir():
        problems.append(f"real nodes need cgroup v1 pids and freezer hierarchies under {CGROUP_ROOT}")
    return problems


# --- slots ---------------------------------------------------------------------------


def claim_slot(owner: Path) -> int:
    """A free slot for the simulation in `owner` (its directory). A slot whose
    owner has no state file any more is stale and taken over, after cleaning
    whatever its simulation left."""
    SLOT_ROOT.mkdir(parents=True, exist_ok=True)
    for slot in range(SLOTS):
        path = SLOT_ROOT / str(slot)
        try:
            path.mkdir()
        except FileExistsError:
            holder = Path((path / "owner").read_text().strip()) if (path / "owner").is_file() else None
            if holder is not None and (holder / "state.json").is_file():
                continue
            if holder is None and time.time() - path.stat().st_mtime < 60:
                continue  # being claimed right now
            for cluster in _slot_clusters(slot):
                cleanup(slot, cluster)
            shutil.rmtree(path, ignore_errors=True)
            try:
                path.mkdir()
            except FileExistsError:
                continue
        if _host_uses(slot):
            shutil.rmtree(path, ignore_errors=True)
            continue
        (path / "owner").write_text(f"{owner}\n")
        return slot
    raise NodeError(f"all {SLOTS} simulation slots in {SLOT_ROOT} are taken: stop a simulation first")


def release_slot(slot: int, owner: Path) -> None:
    path = SLOT_ROOT / str(slot)
    if (path / "owner").is_file() and (path / "owner").read_text().strip() == str(owner):
        shutil.rmtree(path, ignore_errors=True)


def unit_name(slot: int, cluster: str) -> str:
    """The name of a node's network namespace and of its cgroup tree (`*` as cluster: a glob of the slot's)."""
    return f"theater{slot}-{cluster}"


def host_link_name(slot: int, cluster: str) -> str:
    """The host end of a node's veth (at most 15 characters, the kernel's limit)."""
    return f"th{slot}-{cluster}"[:15]


def _slot_clusters(slot: int) -> list[str]:
    names = [p.name for p in Path("/run/netns").glob(unit_name(slot, "*"))] if Path("/run/netns").is_dir() else []
    groups = [p.name for p in (CGROUP_ROOT / "pids").glob(unit_name(slot, "*"))]
    dirs = [f"theater{p.name}" for p in NODE_ROOT.glob(f"{slot}-*")] if NODE_ROOT.is_dir() else []
    return sorted({n.split("-", 1)[1] for n in names + groups + dirs})


def _host_uses(slot: int) -> bool:
    """Does the host already have an address or route in 10.201.<slot>.0/24 (someone else's network)?"""
    block = ipaddress.ip_network(f"10.201.{slot}.0/24")
    out = subprocess.run(["ip", "-4", "-o", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        for token in line.split()[:2]:
            try:
                net = ipaddress.ip_network(token, strict=False)
            except ValueError:
                continue
            if net.prefixlen > 8 and net.overlaps(block):
                return True
            break
    return False


# --- one node ----------------------------------------------------------------------------


def node_directory(slot: int, cluster: str) -> Path:
    return NODE_ROOT / f"{slot}-{cluster}"


def api_address(slot: int, cluster_index: int) -> str:
    return f"10.201.{slot}.{128 + cluster_index}"


def api_url(slot: int, cluster: str) -> str:
    """The API server URL of `cluster` as the pods of both clusters reach it (a stack's dashboardApiServer)."""
    return f"https://{api_address(slot, catalog.CLUSTERS.index(cluster))}:{API_PORT}"


@dataclass
class RealNode:
    cluster: str
    index: int  # the cluster's position in catalog.CLUSTERS
    slot: int
    directory: Path
    service_cidr: str
    apiserver_port: int
    api_ports: dict[str, int]  # cluster -> its API server's port on the host (every cluster)
    registry_port: int | None = None
    pids: dict[str, int] = field(default_factory=dict)

    # --- names and addresses --------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.cluster}-real-1"

    @property
    def netns(self) -> str:
        return unit_name(self.slot, self.cluster)

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def host_link(self) -> str:
        return host_link_name(self.slot, self.cluster)

    @property
    def host_ip(self) -> str:
        return f"10.201.{self.slot}.{4 * self.index + 1}"

    @property
    def node_ip(self) -> str:
        return f"10.201.{self.slot}.{4 * self.index + 2}"

    @property
    def pod_cidr(self) -> str:
        return f"10.{210 + self.index}.{self.slot}.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"10.{210 + self.index}.{self.slot}.1"

    @property
    def api_addresses(self) -> dict[str, str]:
        return {c: api_address(self.slot, i) for i, c in enumerate(self.api_ports)}

    @property
    def in_cluster_api(self) -> str:
        """The address pods reach this cluster's API server at (the `kubernetes` Service's endpoint)."""
        return self.api_addresses[self.cluster]

    @property
    def cgroup(self) -> str:
        return unit_name(self.slot, self.cluster)

    @property
    def dns_ip(self) -> str:
        """The kube-dns Service's ClusterIP: .10 of the Service range, as kubeadm does."""
        return str(ipaddress.ip_network(self.service_cidr)[10])

    @property
    def volumes(self) -> Path:
        return self.directory / "volumes"

    def log(self, process: str) -> Path:
        return self.directory / "logs" / f"{process}.log"

    def to_state(self) -> dict:
        data = asdict(self)
        data["directory"] = str(self.directory)
        return data

    @classmethod
    def from_state(cls, data: dict) -> RealNode:
        return cls(**{**data, "directory": Path(data["directory"])})

    # --- prepare ------------------------------------------------------------------

    def prepare(self, pki: ClusterPki, binaries: dict[str, str]) -> None:
        """Certificates, kubeconfigs and every config file; nothing runs yet."""
        d = self.directory
        for sub in ("logs", "pki", "cni/net.d", "cni/ipam", "cni/cache", "containerd/certs.d", "kubelet",
                    "pod-logs", "run", "sysctl", "volumes"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        server = f"https://127.0.0.1:{self.apiserver_port}"
        creds = {
            "kubelet": client_cert(pki, f"node-{self.name}", f"system:node:{self.name}", "system:nodes"),
            "kube-proxy": client_cert(pki, "kube-proxy", "system:kube-proxy"),
            "coredns": client_cert(pki, "coredns", "system:coredns"),
        }
        for who, (crt, key) in creds.items():
            (d / f"{who}.kubeconfig").write_text(_kubeconfig(server, pki.ca_crt, crt, key))
        (d / "resolv.conf").write_text(f"nameserver {self.dns_ip}\n")
        (d / "cni/net.d/10-theater.conflist").write_text(json.dumps(self.cni_config(), indent=2))
        (d / "containerd/config.toml").write_text(self.containerd_config())
        (d / "kubelet/config.json").write_text(json.dumps(self.kubelet_config(pki), indent=2))
        (d / "kube-proxy.json").write_text(json.dumps(self.kube_proxy_config(), indent=2))
        (d / "Corefile").write_text(self.corefile())
        (d / "supervise.json").write_text(json.dumps(self.supervise_spec(binaries), indent=2))

    def trust_registry(self, address: str, ca_crt: Path) -> None:
        """containerd pulls from the simulation's registry over TLS, trusting its CA (certs.d/hosts.toml)."""
        host_dir = self.directory / "containerd" / "certs.d" / address
        host_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_crt, host_dir / "ca.crt")
        (host_dir / "hosts.toml").write_text(
            f'server = "https://{address}"\n\n[host."https://{address}"]\n'
            f'  capabilities = ["pull", "resolve"]\n  ca = "{host_dir / "ca.crt"}"\n')
        self.registry_port = int(address.rpartition(":")[2])

    def cni_config(self) -> dict:
        return {
            "cniVersion": "0.4.0", "name": "theater-pods",
            "plugins": [
                {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": False, "ipMasq": False,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": str(self.directory / "cni/ipam"),
                          "ranges": [[{"subnet": self.pod_cidr, "gateway": self.pod_gateway}]],
                          # No default route: the Services and the API addresses, nothing else.
                          "routes": [{"dst": self.service_cidr},
                                     {"dst": f"10.201.{self.slot}.128/25"}]}},
            ],
        }

    def containerd_config(self) -> str:
        d = self.directory / "containerd"
        return f"""version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
[grpc]
  address = "{d / 'containerd.sock'}"
[ttrpc]
  address = "{d / 'containerd.sock.ttrpc'}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  # This machine withholds CAP_SYS_RESOURCE: no negative oom_score_adj (the kubelet gives pause -998).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.directory / 'cni/net.d'}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{d / 'certs.d'}"
"""

    def kubelet_config(self, pki: ClusterPki) -> dict:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": self.node_ip, "port": 10250, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(pki.ca_crt)}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{self.cgroup}",
            "containerRuntimeEndpoint": f"unix://{self.directory / 'containerd/containerd.sock'}",
            "failSwapOn": False, "makeIPTablesUtilChains": False,
            "resolvConf": str(self.directory / "resolv.conf"), "podLogsDir": str(self.directory / "pod-logs"),
            "clusterDomain": "cluster.local", "clusterDNS": [self.dns_ip],
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                             "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 99, "imageGCLowThresholdPercent": 98,
            "serializeImagePulls": False, "registerNode": True, "maxPods": 30,
            "syncFrequency": "10s", "nodeStatusUpdateFrequency": "10s", "staticPodPath": "",
        }

    def kube_proxy_config(self) -> dict:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "mode": "iptables", "hostnameOverride": self.name, "bindAddress": self.node_ip,
            "clusterCIDR": self.pod_cidr,
            "clientConnection": {"kubeconfig": str(self.directory / "kube-proxy.kubeconfig")},
            "healthzBindAddress": "127.0.0.1:10256", "metricsBindAddress": "127.0.0.1:10249",
            # conntrack tables are per network namespace, but nf_conntrack_max is the machine's: leave them all.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "oomScoreAdj": 0,
        }

    def corefile(self) -> str:
        kubeconfig = self.directory / "coredns.kubeconfig"
        return f""".:{DNS_PORT} {{
    errors
    health {self.node_ip}:8080
    ready {self.node_ip}:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loadbalance
}}
"""

    def supervise_spec(self, binaries: dict[str, str]) -> dict:
        d = self.directory
        labels = ",".join([f"cluster-name={self.cluster}", "type=real", "theater.dev/real-node=true"])
        return {
            "sysctls": list(KUBELET_SYSCTLS),
            "binds": {"/run": str(d / "run"), "/var/lib/cni": str(d / "cni/cache")},
            "containerd": ["containerd", "--config", str(d / "containerd/config.toml")],
            "containerd_socket": str(d / "containerd/containerd.sock"),
            "pause": str(pause_image_tar()),
            "processes": {
                "kubelet": [binaries["kubelet"], f"--config={d / 'kubelet/config.json'}",
                            f"--kubeconfig={d / 'kubelet.kubeconfig'}", f"--hostname-override={self.name}",
                            f"--node-ip={self.node_ip}", f"--node-labels={labels}",
                            f"--root-dir={d / 'kubelet'}", f"--cert-dir={d / 'kubelet/pki'}",
                            f"--pod-infra-container-image={PAUSE_IMAGE}", "--v=1"],
                "kube-proxy": [binaries["kube-proxy"], f"--config={d / 'kube-proxy.json'}", "--v=1"],
                "coredns": [binaries["coredns"], "-conf", str(d / "Corefile")],
            },
            "logs": str(d / "logs"),
        }

    # --- network ---------------------------------------------------------------

    def create_network(self) -> None:
        ns = self.netns
        _ip("netns", "add", ns)
        _ip("link", "add", self.host_link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_link)
        _ip("link", "set", self.host_link, "up")
        inside = ["-n", ns]
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "addr", "add", f"{self.node_ip}/30", "dev", "eth0")
        _ip(*inside, "link", "set", "eth0", "up")
        # On lo (this kernel has no dummy links): local to the node, reached from the pods via cni0.
        for address in self.api_addresses.values():
            _ip(*inside, "addr", "add", f"{address}/32", "dev", "lo")
        # Pods never reach the host's namespace through the node's link.
        for direction in ("-i", "-o"):
            _run(["ip", "netns", "exec", ns, "iptables", "-w", "-I", "FORWARD", direction, "eth0", "-j", "DROP"],
                 f"guarding {ns}'s eth0")

    # --- cgroups -------------------------------------------------------------

    def create_cgroups(self) -> None:
        for hierarchy in _hierarchies():
            group = hierarchy / self.cgroup
            group.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (group / knob).write_text((hierarchy / knob).read_text())
            (group / "node").mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (group / "node" / knob).write_text((group / knob).read_text())

    def _enter_cgroup(self) -> None:
        """preexec_fn: join the node's cgroup in every hierarchy before exec."""
        pid = str(os.getpid())
        for hierarchy in _hierarchies():
            (hierarchy / self.cgroup / "node" / "cgroup.procs").write_text(pid)

    # --- start ---------------------------------------------------------------

    def start(self, env: dict[str, str]) -> None:
        routes = [f"127.0.0.1:{self.apiserver_port}=127.0.0.1:{self.apiserver_port}"]
        routes += [f"{address}:{API_PORT}=127.0.0.1:{self.api_ports[c]}" for c, address in self.api_addresses.items()]
        if self.registry_port:
            routes.append(f"127.0.0.1:{self.registry_port}=127.0.0.1:{self.registry_port}")
        python = sys.executable
        self._spawn("relay", [python, "-m", "sim.relay", str(self.netns_path), *routes], env)
        self._spawn("node", ["nsenter", f"--net={self.netns_path}", "--", "unshare", "--mount",
                             "--propagation", "private", "--", python, "-m", "sim.node", "supervise",
                             str(self.directory)], env)

    def _spawn(self, process: str, argv: list[str], env: dict[str, str]) -> None:
        root = str(Path(__file__).resolve().parents[1])
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))}
        with self.log(process).open("ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True, cwd=self.directory, preexec_fn=self._enter_cgroup)
        self.pids[process] = proc.pid

    def processes(self) -> dict[int, str]:
        """pid -> command name of everything running in the node's cgroup tree."""
        found = {}
        for pid in _cgroup_pids(CGROUP_ROOT / "pids" / self.cgroup):
            try:
                found[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                pass
        return found

    def check_alive(self) -> None:
        names = set(self.processes().values())
        for needed in ("containerd", "kubelet", "kube-proxy", "coredns"):
            if needed not in names:
                tail = ""
                log = self.log(needed)
                if log.is_file():
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                node_log = self.log("node").read_text(errors="replace")[-1500:] if self.log("node").is_file() else ""
                raise NodeError(f"{self.name}: {needed} is not running (log: {log}):\n{tail}\n{node_log}")

    def stop(self) -> list[str]:
        return cleanup(self.slot, self.cluster)


def _kubeconfig(server: str, ca: Path, crt: Path, key: Path) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "node",
        "clusters": [{"name": "sim", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "node", "user": {"client-certificate": str(crt), "client-key": str(key)}}],
        "contexts": [{"name": "node", "context": {"cluster": "sim", "user": "node"}}],
    }, indent=2)


def _run(argv: list[str], what: str) -> str:
    return run(argv, what=what, error=NodeError)


def _ip(*args: str) -> None:
    _run(["ip", *args], "setting up a node network")


# --- cleanup -------------------------------------------------------------------------


def _hierarchies() -> list[Path]:
    """The cgroup v1 hierarchies (and the v2 one, if mounted next to them) under /sys/fs/cgroup."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[2] in ("cgroup", "cgroup2") and parts[1].startswith(str(CGROUP_ROOT) + "/"):
            found.append(Path(parts[1]))
    return found


def _cgroup_pids(group: Path) -> set[int]:
    pids: set[int] = set()
    if not group.is_dir():
        return pids
    for procs in group.rglob("cgroup.procs"):
        try:
            pids.update(int(p) for p in procs.read_text().split())
        except OSError:
            pass
    return pids


def cleanup(slot: int, cluster: str) -> list[str]:
    """Kill everything in the node's cgroup tree, remove the tree and the network
    namespace. Safe to call for a node that never started or is gone. Returns
    the names of the processes it had to kill."""
    name = unit_name(slot, cluster)
    killed: list[str] = []
    freezer = CGROUP_ROOT / "freezer" / name
    if freezer.is_dir():
        (freezer / "freezer.state").write_text("FROZEN")
    for _ in range(50):
        pids = _cgroup_pids(CGROUP_ROOT / "pids" / name)
        if not pids:
            break
        for pid in pids:
            try:
                killed.append(Path(f"/proc/{pid}/comm").read_text().strip())
                os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        if freezer.is_dir():
            (freezer / "freezer.state").write_text("THAWED")  # killed tasks exit only when thawed
        time.sleep(0.1)
    for hierarchy in _hierarchies():
        group = hierarchy / name
        if not group.is_dir():
            continue
        for sub in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir(sub)
        _rmdir(group)
    if (Path("/run/netns") / name).exists():
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    shutil.rmtree(node_directory(slot, cluster), ignore_errors=True)
    link = host_link_name(slot, cluster)
    if subprocess.run(["ip", "link", "show", link], capture_output=True).returncode == 0:
        subprocess.run(["ip", "link", "delete", link], capture_output=True)
    return sorted(set(killed))


def _rmdir(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # a task is still exiting


# --- the pause image -------------------------------------------------------------------


def pause_image_tar() -> Path:
    """registry.k8s.io/pause:3.9 as an OCI archive for `ctr images import`: the
    static binary of Kubernetes' own build/pause/linux/pause.c (from the module
    `theater tools build` downloads), on one layer, as its Dockerfile builds it."""
    from sim import tools

    kube = tools.load_versions()["kubernetes"]
    out = tools.tools_root() / f"pause-{kube.version}"
    tar = out / "pause.oci.tar"
    if tar.is_file():
        return tar
    out.mkdir(parents=True, exist_ok=True)
    try:  # the module `theater tools build` already downloaded: no network when it did
        source = Path(tools.module_dir(kube.module, kube.version, out, out / "download.log", tools.go_env())["Dir"])
    except tools.ToolError as exc:
        raise NodeError(f"cannot find Kubernetes' pause.c: {exc}") from None
    source /= "build/pause/linux/pause.c"
    binary = out / "pause"
    _run(["gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION=v3.9-theater", "-o", str(binary), str(source)],
         "compiling the pause container (apt-get install gcc libc6-dev)")
    _run(["strip", str(binary)], "stripping pause")
    tmp = out / "pause.oci.tar.tmp"
    layer = layer_tar({"pause": binary.read_bytes()})
    tmp.write_bytes(oci_archive(PAUSE_IMAGE, layer, entrypoint=["/pause"], user="65535:65535"))
    tmp.rename(tar)
    return tar


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An image layer holding executable files at /."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            t.addfile(info, io.BytesIO(data))
    return layer.getvalue()


def oci_archive(ref: str, layer: bytes, *, entrypoint: list[str], user: str = "", env: list[str] = ()) -> bytes:
    """A one-layer OCI image archive (the layout `ctr images import` reads)."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes, media_type: str) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": entrypoint, "User": user, "Env": list(env)},
              "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}
    config_desc = blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc]}
    manifest_desc = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    manifest_desc["annotations"] = {"io.containerd.image.name": ref,
                                    "org.opencontainers.image.ref.name": ref.rpartition(":")[2]}
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        entries = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
                   "index.json": json.dumps(index).encode()}
        entries |= {f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.items()}
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


# --- inside the node: the supervisor ------------------------------------------------


def supervise(directory: Path) -> int:
    """Runs in the node's network namespace and a private mount namespace (see start())."""
    spec = json.loads((directory / "supervise.json").read_text())
    logs = Path(spec["logs"])
    shield = directory / "sysctl"
    for key in spec["sysctls"]:
        fake = shield / key.replace("/", "_")
        fake.write_text(Path(f"/proc/sys/{key}").read_text())
        subprocess.run(["mount", "--bind", str(fake), f"/proc/sys/{key}"], check=True)
    for target, source in spec["binds"].items():
        Path(target).mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", source, target], check=True)
    children: dict[str, subprocess.Popen] = {}

    def start(name: str, argv: list[str]) -> None:
        with (logs / f"{name}.log").open("ab") as out:
            children[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        print(f"supervise: started {name} (pid {children[name].pid})", flush=True)

    def stop(signum, frame):  # noqa: ANN001
        for proc in children.values():
            proc.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    start("containerd", spec["containerd"])
    socket_path = Path(spec["containerd_socket"])
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        if children["containerd"].poll() is not None or time.monotonic() > deadline:
            print("supervise: containerd did not start", flush=True)
            return 1
        time.sleep(0.1)
    imported = subprocess.run(["ctr", "-a", str(socket_path), "-n", "k8s.io", "images", "import", spec["pause"]],
                              capture_output=True, text=True)
    print(f"supervise: pause image import: {imported.returncode} {imported.stdout.strip()} {imported.stderr.strip()}",
          flush=True)
    for name, argv in spec["processes"].items():
        start(name, argv)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 1
        for name, proc in children.items():
            if proc.pid == pid:
                print(f"supervise: {name} exited ({status}); see {logs / (name + '.log')}", flush=True)
                proc.returncode = status
                # kube-proxy and CoreDNS come back (they only wait for the API); the others are fatal.
                if name in ("kube-proxy", "coredns"):
                    time.sleep(1)
                    start(name, spec["processes"][name])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "supervise":
        sys.exit(supervise(Path(sys.argv[2])))
    print("usage: python -m sim.node supervise NODE_DIR", file=sys.stderr)
    sys.exit(2)
