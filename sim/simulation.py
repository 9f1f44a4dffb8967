"""Two simulated clusters, ctx1 and ctx2, to rehearse a deployment.

    theater sim up [--dir DIR] [--istio current|1.20.0] [--nodes N] [--unlabelled ctx2]
    theater sim down [--dir DIR]
    theater sim status [--dir DIR]

`up` starts two real control planes on 127.0.0.1 (sim/controlplane.py), seeds
them like a mesh install would (sim/objects.py), writes DIR/kubeconfig with
contexts ctx1 and ctx2, and returns; the processes keep running. `down` stops
every process it started and removes DIR. Tools come from
`theater tools build` (sim/tools.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from services import catalog
from sim import tools
from sim.certs import make_pki
from sim.controlplane import ControlPlane, Ports, SimError, kubeconfig_text
from sim.objects import seed, wait_settled

DEFAULT_DIR = Path(".theater") / "sim"
STATE_FILE = "state.json"
INGRESS_CLUSTER = "ctx1"
SERVICE_CIDRS = {"ctx1": "10.96.0.0/16", "ctx2": "10.97.0.0/16"}
LB_IPS = {"ctx1": "192.0.2.11", "ctx2": "192.0.2.12"}  # TEST-NET-1: documentation addresses


@dataclass
class Simulation:
    directory: Path
    planes: dict[str, ControlPlane]
    istio: str

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    def save(self) -> None:
        data = {"istio": self.istio, "planes": [p.to_state() for p in self.planes.values()]}
        (self.directory / STATE_FILE).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Simulation:
        path = directory / STATE_FILE
        if not path.is_file():
            raise SimError(f"no simulation in {directory} (start one with `theater sim up --dir {directory}`)")
        data = json.loads(path.read_text())
        planes = {p["name"]: ControlPlane.from_state(p) for p in data["planes"]}
        return cls(directory, planes, data["istio"])


def _say(message: str, started: float) -> None:
    print(f"[sim {time.monotonic() - started:5.1f}s] {message}", flush=True)


def up(directory: Path, *, istio: str = "current", nodes: int = 2, unlabelled: tuple[str, ...] = (),
       quiet: bool = False) -> Simulation:
    """Start ctx1 and ctx2. On any failure, stop what was started and remove the directory."""
    started = time.monotonic()
    say = (lambda m: None) if quiet else (lambda m: _say(m, started))
    directory = directory.resolve()
    if (directory / STATE_FILE).exists():
        raise SimError(f"a simulation already runs in {directory}: `theater sim down --dir {directory}` first")
    binaries = tools.locate()
    needed = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
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
        mesh_root = make_pki(directory / "mesh-root", "mesh-root")
        root_cert = mesh_root.ca_crt.read_text()
        for cluster in catalog.CLUSTERS:
            plane = ControlPlane(cluster, directory / cluster, Ports.pick(), SERVICE_CIDRS[cluster])
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
                 ingress=cluster == INGRESS_CLUSTER, root_cert=root_cert, peers=peers, lb_ip=LB_IPS[cluster])
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


def _raise_interrupt(signum, frame):  # noqa: ANN001
    raise KeyboardInterrupt(f"signal {signum}")


def _teardown(sim: Simulation) -> list[str]:
    killed = []
    for plane in sim.planes.values():
        killed += [f"{plane.name}/{p}" for p in plane.stop()]
    shutil.rmtree(sim.directory, ignore_errors=True)
    return killed


def down(directory: Path) -> list[str]:
    """Stop every process of the simulation in directory and remove it. Returns what had to be killed."""
    directory = directory.resolve()
    sim = Simulation.load(directory)
    return _teardown(sim)


def status(directory: Path) -> dict:
    sim = Simulation.load(directory.resolve())
    report = {"kubeconfig": str(sim.kubeconfig), "istio": sim.istio, "clusters": {}}
    for name, plane in sim.planes.items():
        alive = {p: plane._alive(p) for p in plane.pids}
        report["clusters"][name] = {"server": plane.server, "processes": alive}
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    u = sub.add_parser("up", help="start ctx1 and ctx2")
    u.add_argument("--istio", default="current", choices=["current", "1.20.0"], help="Istio CRD release")
    u.add_argument("--nodes", type=int, default=2, help="fake nodes per cluster (default 2)")
    u.add_argument("--unlabelled", action="append", default=[], metavar="CLUSTER",
                   help="leave this cluster's nodes without the cluster-name label")
    for p in (u, sub.add_parser("down", help="stop everything and remove the directory"),
              sub.add_parser("status", help="what runs")):
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"state directory (default {DEFAULT_DIR})")


def main(args: argparse.Namespace) -> int:
    try:
        if args.action == "up":
            if not 1 <= args.nodes <= 10:
                raise SimError("--nodes takes 1 to 10")
            sim = up(args.dir, istio=args.istio, nodes=args.nodes, unlabelled=tuple(args.unlabelled))
            print(f"export KUBECONFIG={sim.kubeconfig}")
            print(f"stop with: uv run theater sim down --dir {args.dir}")
            return 0
        if args.action == "down":
            killed = down(args.dir)
            print(f"stopped; removed {args.dir.resolve()}" + (f" (killed: {', '.join(killed)})" if killed else ""))
            return 0
        print(json.dumps(status(args.dir), indent=2))
        return 0
    except SimError as exc:
        print(f"theater sim: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="theater sim")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

