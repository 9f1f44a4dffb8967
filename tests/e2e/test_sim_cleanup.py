"""`theater sim down` removes everything a real-node simulation made, also after
`up` was killed with SIGKILL halfway, or a node's supervisor was: processes,
mounts, network namespaces, links, cgroups, the slot, the directory. And the
machine's kernel tunables and its own iptables rules are as they were."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim import node as node_mod
from tests.e2e.clusters import wait_for

ROOT = Path(__file__).resolve().parents[2]
# What a kubelet or kube-proxy would change on a host (the kubelet's kernel defaults, kube-proxy's net.*).
HOST_SYSCTLS = (*node_mod.KUBELET_SYSCTLS, "net/ipv4/conf/all/route_localnet", "net/bridge/bridge-nf-call-iptables",
                "net/ipv4/ip_forward", "net/netfilter/nf_conntrack_max")


def host_state() -> dict:
    sysctls = {}
    for key in HOST_SYSCTLS:
        path = Path("/proc/sys") / key
        sysctls[key] = path.read_text().strip() if path.exists() else None
    iptables = {table: subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True).stdout
                for table in ("filter", "nat")}
    return {"sysctls": sysctls, "iptables": iptables}


def leftovers(directory: Path, slot: int | None) -> dict[str, list[str]]:
    """Everything of the simulation in directory (slot: its names) that still exists."""
    found: dict[str, list[str]] = {}
    marker = str(directory)
    procs = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    procs.append(f"{entry.name} {(entry / 'comm').read_text().strip()}")
            except OSError:
                pass
    found["processes"] = procs
    found["mounts"] = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if marker in line]
    if slot is not None:
        prefix = f"theater{slot}-"
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        found["netns"] = [n for n in netns if n.startswith(prefix)]
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        found["links"] = [line.split(":")[1].strip() for line in links.splitlines()
                          if line.split(":")[1].strip().split("@")[0].startswith(f"th{slot}-")]
        found["cgroups"] = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{prefix}*")]
        found["slot"] = [str(node_mod.SLOT_ROOT / str(slot))] if (node_mod.SLOT_ROOT / str(slot)).exists() else []
        found["node directories"] = [str(p) for p in node_mod.NODE_ROOT.glob(f"{slot}-*")]
    found["directory"] = [str(directory)] if directory.exists() else []
    return {k: v for k, v in found.items() if v}


def start_up(directory: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.cli", "sim", "up", "--dir", str(directory),
                             "--real-nodes", "1", "--nodes", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def down(directory: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "services.cli", "sim", "down", "--dir", str(directory)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def slot_of(directory: Path) -> int | None:
    state = directory / "state.json"
    try:
        return json.loads(state.read_text()).get("slot")
    except (OSError, ValueError):
        return None


@pytest.fixture(autouse=True)
def _real_nodes_possible() -> None:
    problems = node_mod.missing_requirements()
    if problems:
        if os.environ.get("CI") == "true":
            pytest.fail("; ".join(problems), pytrace=False)
        pytest.skip("; ".join(problems))


def test_down_after_up_was_killed_while_starting_the_nodes(tmp_path: Path) -> None:
    before = host_state()
    directory = tmp_path / "sim"
    up = start_up(directory)
    try:
        # Kill it as soon as the first node's namespace exists: nodes half made, the second not at all.
        wait_for(lambda: slot_of(directory) is not None or up.poll() is not None, 120, "the slot in the state file")
        slot = slot_of(directory)
        wait_for(lambda: Path(f"/run/netns/theater{slot}-ctx1").exists() or up.poll() is not None, 120,
                 "the first node's network namespace")
        up.send_signal(signal.SIGKILL)
    finally:
        up.wait(30)
    assert up.returncode == -signal.SIGKILL, up.stdout.read()
    assert slot is not None
    assert leftovers(directory, slot), "nothing to clean: the kill came too late to test anything"
    down(directory)
    assert leftovers(directory, slot) == {}
    assert host_state() == before


def test_down_after_a_node_supervisor_died(tmp_path: Path) -> None:
    before = host_state()
    directory = tmp_path / "sim"
    up = start_up(directory)
    out, _ = up.communicate(timeout=300)
    assert up.returncode == 0, out
    slot = slot_of(directory)
    state = json.loads((directory / "state.json").read_text())
    supervisor = next(n["pids"]["node"] for n in state["nodes"] if n["cluster"] == "ctx1")
    os.kill(supervisor, signal.SIGKILL)  # its containerd, kubelet, ... are orphans now
    time.sleep(0.5)
    assert leftovers(directory, slot)["processes"]
    said = down(directory)
    assert "kubelet" in said, said
    assert leftovers(directory, slot) == {}
    assert host_state() == before
