"""Two simulated clusters, ctx1 and ctx2, to rehearse a deployment.

    theater sim up [--dir DIR] [--istio current|1.20.0] [--nodes N] [--real-nodes 0|1] [--unlabelled ctx2]
    theater sim down [--dir DIR]
    theater sim status [--dir DIR]

`up` starts two real control planes on 127.0.0.1 (sim/controlplane.py), seeds
them like a mesh install would (sim/objects.py), writes DIR/kubeconfig with
contexts ctx1 and ctx2, and returns; the processes keep running. With
--real-nodes 1 (the command's default) each cluster also gets a real node
(sim/node.py: containerd, kubelet, kube-proxy, CoreDNS) where the app's pods
really run, and an image registry (sim/registry.py) they pull from; the kwok
nodes are then tainted so that only the sim's own stand-ins stay on them.
`down` stops every process it started, removes every network namespace,
cgroup and mount of the real nodes, and removes DIR. Tools come from
`theater tools build` (sim/tools.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from services import catalog
from sim import node as node_mod
from sim import tools
from sim.certs import make_pki
from sim.controlplane import ControlPlane, Ports, SimError, kubeconfig_text
from sim.node import NodeError, RealNode
from sim.objects import create_all, real_node_objects, seed, storage_objects, wait_settled

DEFAULT_DIR = Path(".theater") / "sim"
STATE_FILE = "state.json"
INGRESS_CLUSTER = "ctx1"
SERVICE_CIDRS = {"ctx1": "10.96.0.0/16", "ctx2": "10.97.0.0/16"}
LB_IPS = {"ctx1": "192.0.2.11", "ctx2": "192.0.2.12"}  # TEST-NET-1: documentation addresses


FAKE_VOLUMES_PER_NODE = 2
REAL_VOLUMES_PER_NODE = 4


@dataclass
class Simulation:
    directory: Path
    planes: dict[str, ControlPlane]
    istio: str
    slot: int | None = None  # held while real nodes may exist (sim/node.py)
    nodes: dict[str, RealNode] = field(default_factory=dict)
    registry: object | None = None  # sim.registry.Registry

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    def in_cluster_api(self, cluster: str) -> str | None:
        """The API server URL of `cluster` as its own and the other cluster's pods reach it
        (a stack's dashboardApiServer); None without real nodes."""
        if self.slot is None:
            return None
        return node_mod.api_url(self.slot, cluster)

    def save(self) -> None:
        data = {"istio": self.istio, "planes": [p.to_state() for p in self.planes.values()], "slot": self.slot,
                "nodes": [n.to_state() for n in self.nodes.values()],
                "registry": self.registry.to_state() if self.registry is not None else None}
        tmp = self.directory / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.directory / STATE_FILE)

    @classmethod
    def load(cls, directory: Path) -> Simulation:
        path = directory / STATE_FILE
        if not path.is_file():
            raise SimError(f"no simulation in {directory} (start one with `theater sim up --dir {directory}`)")
        data = json.loads(path.read_text())
        planes = {p["name"]: ControlPlane.from_state(p) for p in data["planes"]}
        nodes = {n["cluster"]: RealNode.from_state(n) for n in data.get("nodes", [])}
        registry = None
        if data.get("registry"):
            from sim.registry import Registry

            registry = Registry.from_state(data["registry"])
        return cls(directory, planes, data["istio"], data.get("slot"), nodes, registry)


def _say(message: str, started: float) -> None:
    print(f"[sim {time.monotonic() - started:5.1f}s] {message}", flush=True)


def up(directory: Path, *, istio: str = "current", nodes: int = 2, unlabelled: tuple[str, ...] = (),
       real_nodes: int = 0, quiet: bool = False) -> Simulation:
    """Start ctx1 and ctx2. On any failure, stop what was started and remove the directory.

    real_nodes=1: one real node per cluster (sim/node.py) and the registry; the
    Python default stays 0 (kwok only) for the tests that need only the API."""
    started = time.monotonic()
    say = (lambda m: None) if quiet else (lambda m: _say(m, started))
    directory = directory.resolve()
    if (directory / STATE_FILE).exists():
        raise SimError(f"a simulation already runs in {directory}: `theater sim down --dir {directory}` first")
    binaries = tools.locate()
    needed = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
    if real_nodes not in (0, 1):
        raise SimError("--real-nodes takes 0 or 1")
    if real_nodes:
        needed += list(node_mod.NODE_BINARIES)
        problems = node_mod.missing_requirements()
        if problems:
            raise SimError("; ".join(problems))
    absent = [b for b in needed if not binaries.get(b)]
    if absent:
        raise SimError(f"missing {', '.join(absent)}: run `uv run theater tools build` first")
    for cluster in unlabelled:
        if cluster not in catalog.CLUSTERS:
            raise SimError(f"--unlabelled {cluster}: no such cluster (choose from {', '.join(catalog.CLUSTERS)})")
    directory.mkdir(parents=True, exist_ok=True)
    sim = Simulation(directory, {}, istio)
    env = tools.tool_env()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # a killed `up` still cleans up
    try:
        if real_nodes:
            sim.slot = node_mod.claim_slot(directory)
            sim.save()  # before anything is made: a killed `up` is cleaned by `down`
        mesh_root = make_pki(directory / "mesh-root", "mesh-root")
        root_cert = mesh_root.ca_crt.read_text()
        for index, cluster in enumerate(catalog.CLUSTERS):
            plane = ControlPlane(cluster, directory / cluster, Ports.pick(), SERVICE_CIDRS[cluster])
            if sim.slot is not None:
                plane.api_ips = [node_mod.api_address(sim.slot, index)]
            sim.planes[cluster] = plane
            plane.prepare()
            say(f"{cluster}: starting etcd, kube-apiserver (https://127.0.0.1:{plane.ports.apiserver}), "
                "kube-controller-manager, kube-scheduler, kwok")
            plane.start(binaries, env)
            sim.save()
        for cluster, plane in sim.planes.items():
            peers = [c for c in catalog.CLUSTERS if c != cluster]
            say(f"{cluster}: {nodes} kwok nodes{' (no cluster-name label)' if cluster in unlabelled else ''}, "
                f"Istio {istio} CRDs, istio-system")
            seed(plane, release=istio, nodes=nodes, labelled=cluster not in unlabelled,
                 ingress=cluster == INGRESS_CLUSTER, root_cert=root_cert, peers=peers, lb_ip=LB_IPS[cluster],
                 real_nodes=bool(real_nodes))
        if real_nodes:
            _start_real_nodes(sim, binaries, env, nodes, say)
        else:
            for plane in sim.planes.values():
                create_all(plane, storage_objects(_fake_volumes(plane.name, nodes)))
        for plane in sim.planes.values():
            wait_settled(plane)
        sim.kubeconfig.write_text(kubeconfig_text(
            {name: (plane.server, plane.pki) for name, plane in sim.planes.items()}, current="ctx1"))
        sim.save()
    except BaseException:
        _teardown(sim)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    say(f"ready: export KUBECONFIG={sim.kubeconfig}")
    return sim


def _fake_volumes(cluster: str, count: int) -> dict[str, list[str]]:
    """Local volumes on the kwok nodes: they bind, and nothing ever mounts them."""
    return {f"{cluster}-node-{i}": [f"/theater-sim/kwok/{cluster}-node-{i}/pv-{v}"
                                    for v in range(1, FAKE_VOLUMES_PER_NODE + 1)]
            for i in range(1, count + 1)}


def _start_real_nodes(sim: Simulation, binaries: dict, env: dict[str, str], fake: int, say) -> None:  # noqa: ANN001
    from sim.registry import Registry, RegistryError

    sim.registry = Registry(sim.directory / "registry")
    try:
        sim.registry.prepare()
        say(f"registry: starting {sim.registry.url} (TLS, htpasswd users {sim.registry.admin.username} "
            f"and {sim.registry.robot.username})")
        sim.registry.start()
    except RegistryError as exc:
        raise SimError(f"the registry did not start: {exc}") from exc
    finally:
        sim.save()
    api_ports = {name: plane.ports.apiserver for name, plane in sim.planes.items()}
    for index, (cluster, plane) in enumerate(sim.planes.items()):
        node = RealNode(cluster, index, sim.slot, node_mod.node_directory(sim.slot, cluster), plane.service_cidr,
                        plane.ports.apiserver, api_ports)
        shutil.rmtree(node.directory, ignore_errors=True)
        node.directory.mkdir(parents=True)
        (plane.directory / "node").symlink_to(node.directory)
        sim.nodes[cluster] = node
        node.prepare(plane.pki, binaries)
        node.trust_registry(sim.registry.address, sim.registry.ca_crt)
        volumes = []
        for v in range(1, REAL_VOLUMES_PER_NODE + 1):
            path = node.volumes / f"pv-{v}"
            path.mkdir(parents=True, exist_ok=True)
            volumes.append(str(path))
        create_all(plane, real_node_objects(api_address=node.in_cluster_api, api_port=node_mod.API_PORT,
                                            dns_ip=node.dns_ip, dns_address=node.node_ip)
                   + storage_objects({node.name: volumes, **_fake_volumes(cluster, fake)}))
        sim.save()
        say(f"{cluster}: real node {node.name}: netns {node.netns}, node IP {node.node_ip}, pods {node.pod_cidr}, "
            f"API for pods {node.in_cluster_api}:{node_mod.API_PORT}, DNS {node.dns_ip}")
        node.create_cgroups()
        node.create_network()
        node.start(env)
        sim.save()
    for cluster, node in sim.nodes.items():
        _wait_real_node(sim.planes[cluster], node)
        say(f"{cluster}: {node.name} Ready, CoreDNS ready")


def _wait_real_node(plane: ControlPlane, node: RealNode, timeout: float = 120) -> None:
    import httpx

    started = time.monotonic()
    deadline = started + timeout
    waiting = "the kubelet to register"
    with plane.client() as client:
        while time.monotonic() < deadline:
            plane.check_processes()
            if time.monotonic() > started + 10:  # the supervisor starts them one after the other
                node.check_alive()
            r = client.get(f"/api/v1/nodes/{node.name}")
            if r.status_code == 200:
                conditions = (r.json().get("status") or {}).get("conditions") or []
                if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                    try:
                        ready = httpx.get(f"http://{node.node_ip}:8181/ready", timeout=2, trust_env=False)
                        if ready.status_code == 200:
                            return
                        waiting = f"CoreDNS ready ({ready.status_code} {ready.text[:100]})"
                    except httpx.HTTPError as exc:
                        waiting = f"CoreDNS ready ({exc})"
                else:
                    waiting = f"{node.name} Ready ({[c.get('message') for c in conditions if c['type'] == 'Ready']})"
            time.sleep(0.5)
    raise SimError(f"{plane.name}: still waiting for {waiting} after {timeout:.0f}s (logs in {node.directory / 'logs'})")


def _raise_interrupt(signum, frame):  # noqa: ANN001
    raise KeyboardInterrupt(f"signal {signum}")


def _teardown(sim: Simulation) -> list[str]:
    killed = []
    if sim.slot is not None:
        # By name, not by what the state lists: a killed `up` may have made a node it never recorded.
        for cluster in catalog.CLUSTERS:
            killed += [f"{cluster}/node/{p}" for p in node_mod.cleanup(sim.slot, cluster)]
    if sim.registry is not None:
        sim.registry.stop()
    for plane in sim.planes.values():
        killed += [f"{plane.name}/{p}" for p in plane.stop()]
    killed += [f"leftover/{p}" for p in _kill_leftovers(sim.directory)]
    if sim.slot is not None:
        node_mod.release_slot(sim.slot, sim.directory)
    shutil.rmtree(sim.directory, ignore_errors=True)
    return killed


def _kill_leftovers(directory: Path) -> list[str]:
    """Processes started with a path in directory on their command line that the state
    file did not know of (an `up` killed between starting a process and saving its pid)."""
    mine = {os.getpid(), os.getppid()}
    marker = (str(directory) + "/").encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                name = (entry / "comm").read_text().strip()
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(name)
        except (OSError, ProcessLookupError):
            pass
    return killed


def down(directory: Path) -> list[str]:
    """Stop every process of the simulation in directory and remove it. Returns what had to be killed."""
    directory = directory.resolve()
    sim = Simulation.load(directory)
    return _teardown(sim)


def status(directory: Path) -> dict:
    sim = Simulation.load(directory.resolve())
    report = {"kubeconfig": str(sim.kubeconfig), "istio": sim.istio, "clusters": {}}
    if sim.registry is not None:
        report["registry"] = {"address": sim.registry.address, "ca": str(sim.registry.ca_crt)}
    for name, plane in sim.planes.items():
        alive = {p: plane._alive(p) for p in plane.pids}
        report["clusters"][name] = {"server": plane.server, "processes": alive}
        if name in sim.nodes:
            node = sim.nodes[name]
            report["clusters"][name]["real_node"] = {
                "name": node.name, "netns": node.netns, "node_ip": node.node_ip, "pod_cidr": node.pod_cidr,
                "api_for_pods": sim.in_cluster_api(name), "cgroup": node.cgroup,
                "processes": sorted(set(node.processes().values())),
                "ready": _node_ready(plane, node.name),
            }
    return report


def _node_ready(plane: ControlPlane, name: str) -> bool | str:
    """The node's Ready condition as the API server has it, or why it could not be read."""
    import httpx

    try:
        with plane.client(timeout=3) as client:
            r = client.get(f"/api/v1/nodes/{name}")
    except httpx.HTTPError as exc:
        return f"API server not answering: {exc}"
    if r.status_code != 200:
        return f"not registered ({r.status_code})"
    conditions = (r.json().get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    u = sub.add_parser("up", help="ctx1, ctx2 시작")
    u.add_argument("--istio", default="current", choices=["current", "1.20.0"], help="Istio CRD 릴리스 (기본 %(default)s)")
    u.add_argument("--nodes", type=int, default=2, help="클러스터마다 kwok(가짜) 노드 수 (기본 %(default)s)")
    u.add_argument("--real-nodes", type=int, default=1, choices=[0, 1],
                   help="클러스터마다 실제 노드 수 (containerd + kubelet; 기본 %(default)s, 0 이면 kwok 만)")
    u.add_argument("--unlabelled", action="append", default=[], metavar="CLUSTER",
                   help="이 클러스터의 노드에 cluster-name 레이블을 붙이지 않음")
    for p in (u, sub.add_parser("down", help="모두 멈추고 디렉터리 삭제"),
              sub.add_parser("status", help="무엇이 돌고 있나")):
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"상태 디렉터리 (기본 {DEFAULT_DIR})")


def main(args: argparse.Namespace) -> int:
    try:
        if args.action == "up":
            if not 1 <= args.nodes <= 10:
                raise SimError("--nodes takes 1 to 10")
            sim = up(args.dir, istio=args.istio, nodes=args.nodes, unlabelled=tuple(args.unlabelled),
                     real_nodes=args.real_nodes)
            print(f"export KUBECONFIG={sim.kubeconfig}")
            print(f"stop with: uv run theater sim down --dir {args.dir}")
            return 0
        if args.action == "down":
            killed = down(args.dir)
            print(f"stopped; removed {args.dir.resolve()}" + (f" (killed: {', '.join(killed)})" if killed else ""))
            return 0
        print(json.dumps(status(args.dir), indent=2))
        return 0
    except (SimError, NodeError) as exc:
        print(f"theater sim: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="theater sim")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

