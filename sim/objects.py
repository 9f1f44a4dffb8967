"""What a simulated cluster holds before the app is deployed: the fake nodes,
Istio's CRDs, and the istio-system objects a mesh install leaves behind
(cp-gateway, the gateways' Services and ServiceAccount, istiod, the shared
root CA ConfigMap and the remote secrets).

Objects are created through the API server's REST API with httpx, so they go
through the same validation and admission as anything kubectl would send.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from services import catalog
from sim.controlplane import ControlPlane, SimError

ISTIO_DIR = Path(__file__).with_name("istio")
ISTIO_RELEASES = {"1.20.0": "crds-1.20.0.yaml", "current": "crds-current.yaml"}
ISTIO_NAMESPACE = "istio-system"
INGRESS_SERVICE_ACCOUNT = "istio-ingressgateway-service-account"
FAKE_NODE_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}

# kind -> (API path prefix, plural, namespaced)
_KINDS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Node": ("/api/v1", "nodes", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Service": ("/api/v1", "services", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Secret": ("/api/v1", "secrets", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "Gateway": ("/apis/networking.istio.io/v1beta1", "gateways", True),
    "Endpoints": ("/api/v1", "endpoints", True),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices", True),
    "PersistentVolume": ("/api/v1", "persistentvolumes", False),
    "StorageClass": ("/apis/storage.k8s.io/v1", "storageclasses", False),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
}
# When a cluster has real nodes (sim/node.py), its kwok nodes carry this taint, so
# that the app's pods run for real; the sim's own stand-ins (istiod, the gateways)
# tolerate it and stay on the kwok nodes.
FAKE_NODE_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
STORAGE_CLASS = "local"


def collection_path(obj: dict) -> str:
    prefix, plural, namespaced = _KINDS[obj["kind"]]
    if namespaced:
        return f"{prefix}/namespaces/{obj['metadata'].get('namespace', 'default')}/{plural}"
    return f"{prefix}/{plural}"


def create(client: httpx.Client, obj: dict) -> None:
    """Create obj; an object that already exists is left as it is."""
    r = client.post(collection_path(obj), json=obj)
    if r.status_code == 409:
        return
    if r.status_code >= 300:
        raise SimError(f"creating {obj['kind']} {obj['metadata']['name']} failed: {r.status_code} {r.text[:400]}")


def istio_crds(release: str) -> list[str]:
    """The release's CRDs as published, one YAML document each (the API server parses them)."""
    if release not in ISTIO_RELEASES:
        raise SimError(f"unknown Istio release {release!r}: choose one of {', '.join(ISTIO_RELEASES)}")
    text = (ISTIO_DIR / ISTIO_RELEASES[release]).read_text()
    docs = [d for d in re.split(r"^---\s*$", text, flags=re.M) if "kind: CustomResourceDefinition" in d]
    if not docs:
        raise SimError(f"no CustomResourceDefinition in {ISTIO_RELEASES[release]}")
    return docs


def install_crds(client: httpx.Client, crds: list[str], timeout: float = 120) -> None:
    for doc in crds:
        r = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", content=doc.encode(),
                        headers={"content-type": "application/yaml"})
        if r.status_code not in (201, 409):
            raise SimError(f"creating an Istio CRD failed: {r.status_code} {r.text[:400]}")
    deadline = time.monotonic() + timeout
    while True:
        items = client.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()["items"]
        istio = [i for i in items if i["spec"]["group"].endswith("istio.io")]
        pending = [i["metadata"]["name"] for i in istio if not any(
            c["type"] == "Established" and c["status"] == "True" for c in (i.get("status") or {}).get("conditions") or [])]
        if len(istio) >= len(crds) and not pending:
            return
        if time.monotonic() > deadline:
            raise SimError(f"Istio CRDs not Established within {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.3)


def fake_nodes(cluster: str, count: int, *, labelled: bool = True, tainted: bool = False) -> list[dict]:
    nodes = []
    for i in range(1, count + 1):
        name = f"{cluster}-node-{i}"
        labels = {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "kwok", "type": "kwok",
            "topology.kubernetes.io/region": f"kr-{cluster}", "topology.kubernetes.io/zone": f"kr-{cluster}-{i}",
        }
        if labelled:
            labels[catalog.CLUSTER_LABEL] = cluster
        nodes.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": dict(FAKE_NODE_ANNOTATION)},
            "spec": {"taints": [dict(FAKE_NODE_TAINT)]} if tainted else {},
            "status": {
                "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                "nodeInfo": {"kubeletVersion": "fake", "kubeProxyVersion": "fake", "operatingSystem": "linux",
                             "architecture": "amd64", "containerRuntimeVersion": "kwok"},
            },
        })
    return nodes


def _deployment(name: str, labels: dict, image: str, service_account: str | None = None) -> dict:
    # Stand-ins that cannot run: on the kwok nodes only, also when the cluster has real ones.
    pod_spec: dict = {"containers": [{"name": name, "image": image}], "nodeSelector": {"type": "kwok"},
                      "tolerations": [{**FAKE_NODE_TAINT, "operator": "Equal"}]}
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ISTIO_NAMESPACE, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
    }


def _lb_service(name: str, labels: dict, ports: list[tuple[str, int]]) -> dict:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ISTIO_NAMESPACE, "labels": labels},
        "spec": {"type": "LoadBalancer", "selector": labels,
                 "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports]},
    }


def istio_system(cluster: str, release: str, *, ingress: bool, root_cert: str, peers: list[str],
                 lb_ip: str) -> list[dict]:
    """The istio-system objects an Istio multi-primary install leaves in one cluster."""
    tag = "1.20.0" if release == "1.20.0" else "1.28.0"
    objs: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": ISTIO_NAMESPACE, "labels": {"topology.istio.io/network": f"network-{cluster}"}}},
        _deployment("istiod", {"app": "istiod", "istio": "pilot", "istio.io/rev": "default"},
                    f"docker.io/istio/pilot:{tag}"),
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "istio-ca-root-cert", "namespace": ISTIO_NAMESPACE},
         "data": {"root-cert.pem": root_cert}},
        _lb_service("istio-eastwestgateway", {"app": "istio-eastwestgateway", "istio": "eastwestgateway"},
                    [("status-port", 15021), ("tls", 15443), ("tls-istiod", 15012), ("tls-webhook", 15017)]),
    ]
    for peer in peers:
        objs.append({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": f"istio-remote-secret-{peer}", "namespace": ISTIO_NAMESPACE,
                         "labels": {"istio/multiCluster": "true"},
                         "annotations": {"networking.istio.io/cluster": peer}},
            "stringData": {peer: f"# kubeconfig of {peer} (simulated)\n"},
        })
    if ingress:
        labels = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
        objs += [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": INGRESS_SERVICE_ACCOUNT, "namespace": ISTIO_NAMESPACE}},
            _deployment("istio-ingressgateway", labels, f"docker.io/istio/proxyv2:{tag}", INGRESS_SERVICE_ACCOUNT),
            _lb_service("istio-ingressgateway", labels, [("http2", 80), ("https", 443)]),
            {"apiVersion": "networking.istio.io/v1beta1", "kind": "Gateway",
             "metadata": {"name": "cp-gateway", "namespace": ISTIO_NAMESPACE},
             "spec": {"selector": {"istio": "ingressgateway"},
                      "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                                   "hosts": ["*"]}]}},
        ]
    return objs


def set_load_balancer_ip(client: httpx.Client, name: str, ip: str) -> None:
    """What a cloud's LB controller would do: give the Service an external address."""
    r = client.patch(
        f"/api/v1/namespaces/{ISTIO_NAMESPACE}/services/{name}/status",
        json={"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}},
        headers={"content-type": "application/merge-patch+json"},
    )
    if r.status_code >= 300:
        raise SimError(f"setting the address of {name} failed: {r.status_code} {r.text[:300]}")


def seed(plane: ControlPlane, *, release: str, nodes: int, labelled: bool, ingress: bool, root_cert: str,
         peers: list[str], lb_ip: str, real_nodes: bool = False) -> None:
    with plane.client() as client:
        for node in fake_nodes(plane.name, nodes, labelled=labelled, tainted=real_nodes):
            create(client, node)
        install_crds(client, istio_crds(release))
        for obj in istio_system(plane.name, release, ingress=ingress, root_cert=root_cert, peers=peers,
                                lb_ip=lb_ip):
            create(client, obj)
        set_load_balancer_ip(client, "istio-eastwestgateway", lb_ip)
        if ingress:
            set_load_balancer_ip(client, "istio-ingressgateway", lb_ip)


def wait_settled(plane: ControlPlane, timeout: float = 90) -> None:
    """Nodes Ready (kwok), the default ServiceAccount made (controller manager),
    istio-system's pods Running (scheduler + kwok)."""
    deadline = time.monotonic() + timeout
    waiting = "nodes"
    with plane.client() as client:
        while time.monotonic() < deadline:
            plane.check_processes()
            nodes = client.get("/api/v1/nodes").json().get("items", [])
            ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                             for c in (n.get("status") or {}).get("conditions") or [])]
            if not nodes or len(ready) < len(nodes):
                waiting = f"nodes Ready ({len(ready)}/{len(nodes)})"
            elif client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code != 200:
                waiting = "the default ServiceAccount (kube-controller-manager)"
            else:
                pods = client.get(f"/api/v1/namespaces/{ISTIO_NAMESPACE}/pods").json().get("items", [])
                running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
                if pods and len(running) == len(pods):
                    return
                waiting = f"istio-system pods Running ({len(running)}/{len(pods)})"
            time.sleep(0.5)
    raise SimError(f"{plane.name}: still waiting for {waiting} after {timeout:.0f}s "
                   f"(logs in {plane.directory / 'logs'})")


# --- what real nodes need (sim/node.py) -------------------------------------------------


def _slice(name: str, namespace: str, service: str, address: str, ports: list[tuple[str, int, str]]) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": service,
                                "endpointslice.kubernetes.io/managed-by": "theater-sim"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
    }


def _endpoints(name: str, namespace: str, address: str, ports: list[tuple[str, int, str]]) -> dict:
    return {
        "apiVersion": "v1", "kind": "Endpoints",
        # The EndpointSlice above is written too: the mirroring controller must not add a second one.
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": address}],
                     "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}],
    }


def real_node_objects(*, api_address: str, api_port: int, dns_ip: str, dns_address: str) -> list[dict]:
    """RBAC for the kubelets and CoreDNS, the `kubernetes` Service's endpoint (the
    API server is started with --endpoint-reconciler-type=none) and the kube-dns Service."""
    api_ports = [("https", api_port, "TCP")]
    dns_ports = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]
    return [
        # No Node authorizer here (RBAC only): bind the kubelets' group to system:node, as kubeadm once did.
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "theater-sim:nodes"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}]},
        _endpoints("kubernetes", "default", api_address, api_ports),
        _slice("kubernetes", "default", "kubernetes", api_address, api_ports),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system",
                      "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
         "spec": {"clusterIP": dns_ip,
                  "ports": [{"name": n, "port": p, "targetPort": p, "protocol": proto} for n, p, proto in dns_ports]}},
        _endpoints("kube-dns", "kube-system", dns_address, dns_ports),
        _slice("kube-dns", "kube-system", "kube-dns", dns_address, dns_ports),
    ]


def storage_objects(volumes: dict[str, list[str]], size: str = "10Gi") -> list[dict]:
    """The default StorageClass `local` and pre-made local PersistentVolumes,
    node name -> directories (WaitForFirstConsumer: a claim binds to a volume on
    the node its pod is scheduled to, real or kwok)."""
    objs: list[dict] = [{
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Retain",
    }]
    for node, paths in volumes.items():
        for i, path in enumerate(paths, 1):
            objs.append({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"{node}-pv-{i}", "labels": {"theater-sim/node": node}},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Retain", "storageClassName": STORAGE_CLASS,
                         "local": {"path": path},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
            })
    return objs


def create_all(plane: ControlPlane, objs: list[dict]) -> None:
    with plane.client() as client:
        for obj in objs:
            create(client, obj)
