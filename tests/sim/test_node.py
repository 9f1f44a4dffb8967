"""sim/node.py and the objects a real node needs (sim/objects.py), without
starting anything: names, addresses, slots, the pause image archive, and the
objects' schema (Kubernetes 1.30, strict). The node itself runs in
tests/e2e/test_realpods.py and test_sim_cleanup.py."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import tarfile
from pathlib import Path

import kubernetes_validate
import pytest

from sim import node as node_mod
from sim.node import RealNode, api_address, claim_slot, layer_tar, oci_archive, release_slot
from sim.objects import fake_nodes, real_node_objects, storage_objects


def make(slot: int, cluster: str = "ctx1", index: int = 0) -> RealNode:
    return RealNode(cluster, index, slot, Path(f"/nodes/{slot}-{cluster}"), "10.96.0.0/16" if index == 0 else "10.97.0.0/16",
                    6443, {"ctx1": 6443, "ctx2": 7443})


def test_names_and_addresses_never_collide_between_slots_and_clusters() -> None:
    seen: dict[str, set] = {"netns": set(), "link": set(), "host": set(), "cgroup": set(), "dirs": set()}
    for slot in range(node_mod.SLOTS):
        for index, cluster in enumerate(("ctx1", "ctx2")):
            n = make(slot, cluster, index)
            assert len(n.host_link) <= 15, n.host_link  # IFNAMSIZ
            for key, value in (("netns", n.netns), ("link", n.host_link), ("cgroup", n.cgroup),
                               ("dirs", str(node_mod.node_directory(slot, cluster)))):
                assert value not in seen[key], (key, value)
                seen[key].add(value)
            link = ipaddress.ip_network(f"{n.host_ip}/30", strict=False)
            assert ipaddress.ip_address(n.node_ip) in link and n.node_ip != n.host_ip
            assert not any(link.overlaps(other) for other in seen["host"]), (slot, cluster)
            seen["host"].add(link)
            assert ipaddress.ip_address(n.in_cluster_api) not in link
            assert ipaddress.ip_address(n.pod_gateway) in ipaddress.ip_network(n.pod_cidr)
    # The longest unix socket the node makes, at the default root: containerd's ttrpc socket.
    longest = node_mod.node_directory(63, "ctx2") / "containerd/containerd.sock.ttrpc"
    assert len(str(longest)) < 100


def test_pods_get_routes_to_services_and_api_addresses_only() -> None:
    n = make(7)
    ipam = n.cni_config()["plugins"][0]["ipam"]
    routes = [ipaddress.ip_network(r["dst"]) for r in ipam["routes"]]
    assert ipaddress.ip_network("0.0.0.0/0") not in routes
    assert ipaddress.ip_network(n.service_cidr) in routes
    for address in n.api_addresses.values():
        assert any(ipaddress.ip_address(address) in r for r in routes), address
    assert ipaddress.ip_address(n.host_ip) not in ipaddress.ip_network(n.pod_cidr)
    assert not any(ipaddress.ip_address(n.host_ip) in r for r in routes), "pods must not reach the host's link"
    assert n.cni_config()["plugins"][0]["ipMasq"] is False and n.cni_config()["plugins"][0]["isDefaultGateway"] is False
    # Each cluster's API address is the same in every node of the simulation (dashboardApiServer).
    assert make(7, "ctx2", 1).api_addresses == n.api_addresses == {"ctx1": api_address(7, 0), "ctx2": api_address(7, 1)}
    assert n.dns_ip == "10.96.0.10" and make(7, "ctx2", 1).dns_ip == "10.97.0.10"


def test_the_machine_limits_are_in_the_configs() -> None:
    n = make(3)
    containerd = n.containerd_config()
    assert "restrict_oom_score_adj = true" in containerd and "SystemdCgroup = false" in containerd
    kubelet = n.kubelet_config(type("Pki", (), {"ca_crt": Path("/ca.crt")})())
    assert kubelet["cgroupDriver"] == "cgroupfs" and kubelet["cgroupRoot"] == f"/{n.cgroup}"
    assert kubelet["address"] == n.node_ip and kubelet["clusterDNS"] == [n.dns_ip]
    proxy = n.kube_proxy_config()
    assert proxy["conntrack"]["maxPerCore"] == 0 and proxy["mode"] == "iptables"


def test_slots_are_exclusive_and_stale_ones_are_taken_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_mod, "SLOT_ROOT", tmp_path / "slots")
    monkeypatch.setattr(node_mod, "NODE_ROOT", tmp_path / "nodes")
    monkeypatch.setattr(node_mod, "_host_uses", lambda slot: slot == 1)  # the host routes 10.201.1.0/24
    a, b = tmp_path / "sim-a", tmp_path / "sim-b"
    for d in (a, b):
        d.mkdir()
        (d / "state.json").write_text("{}")
    first, second = claim_slot(a), claim_slot(b)
    assert (first, second) == (0, 2)
    (a / "state.json").unlink()  # sim a is gone without `down`
    (tmp_path / "nodes" / "0-ctx1").mkdir(parents=True)
    monkeypatch.setattr(node_mod, "cleanup", lambda slot, cluster: cleaned.append((slot, cluster)) or [])
    cleaned: list = []
    c = tmp_path / "sim-c"
    assert claim_slot(c) == 0
    assert cleaned == [(0, "ctx1")]
    release_slot(0, b)  # not b's: stays
    assert (tmp_path / "slots" / "0").is_dir()
    release_slot(0, c)
    assert not (tmp_path / "slots" / "0").exists()


def test_the_pause_archive_is_a_valid_oci_layout() -> None:
    data = oci_archive("registry.k8s.io/pause:3.9", layer_tar({"pause": b"\x7fELF..."}), entrypoint=["/pause"],
                       user="65535:65535")
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        files = {m.name: t.extractfile(m).read() for m in t.getmembers()}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, blob in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(blob).hexdigest() == name.rsplit("/", 1)[1]
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "registry.k8s.io/pause:3.9"
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
    layer = files[f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"]
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
    assert config["config"]["Entrypoint"] == ["/pause"] and config["config"]["User"] == "65535:65535"
    with tarfile.open(fileobj=io.BytesIO(layer)) as t:
        (member,) = t.getmembers()
        assert member.name == "pause" and member.mode == 0o755


def test_the_objects_a_real_node_needs_pass_the_1_30_schema() -> None:
    objs = real_node_objects(api_address="10.201.0.128", api_port=443, dns_ip="10.96.0.10", dns_address="10.201.0.2")
    objs += storage_objects({"ctx1-real-1": ["/var/tmp/theater-sim/0-ctx1/volumes/pv-1"], "ctx1-node-1": ["/x"]})
    # (a kwok node's status is partial by design: kwok fills it; its spec is what is checked)
    objs += [{k: v for k, v in n.items() if k != "status"} for n in fake_nodes("ctx1", 2, tainted=True)]
    for obj in objs:
        kubernetes_validate.validate(obj, "1.30", strict=True)
    kinds = [o["kind"] for o in objs]
    assert kinds.count("PersistentVolume") == 2 and "StorageClass" in kinds
    assert all(n["spec"]["taints"][0]["effect"] == "NoSchedule" for n in objs if n["kind"] == "Node")
    assert fake_nodes("ctx1", 1)[0]["spec"] == {}
