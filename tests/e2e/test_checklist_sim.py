"""`theater doctor` and `theater verify` against the two simulated clusters
of `theater sim` (real kube-apiservers; kwok plays the nodes and pods):
a ready pair passes, and each usual failure is found with its fix. The fixes
given as commands are run (kubectl when it is installed, else the same change
through the API) and the check passes again.

The registry is a server answering like Harbor, the edge is the four real
services started as in their home clusters, and Prometheus, Jaeger and Kiali
a server answering like them (tests/checklist/servers.py, with the docs cited).
The outputs are saved in test-artifacts/e2e/ (doctor.txt, verify.txt).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from checklist import doctor, verify
from checklist.report import FAIL, PASS, SKIP
from services import catalog
from services.launcher import LiveServer
from services.redis_server import RedisServer
from sim.objects import ISTIO_NAMESPACE, set_load_balancer_ip
from sim.simulation import LB_IPS
from tests.checklist.servers import MeshLike, Telemetry, booking_trace, harbor_app, healthy_series, kiali_graph
from tests.e2e.clusters import Cluster, running_sim

DOMAIN = "sim.example"
NS = catalog.NAMESPACE
MERGE = {"content-type": "application/merge-patch+json"}
CLUSTER_CHECKS = ["context.ctx1", "context.ctx2", "nodes.ctx1", "nodes.ctx2", "istio.ctx1", "istio.ctx2", "gateway",
                  "ingress-sa", "eastwest.ctx1", "eastwest.ctx2", "remote-secrets.ctx1", "remote-secrets.ctx2", "root-ca"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with running_sim(tmp_path_factory.mktemp("sim-checklist"), istio="current") as s:
        yield s


@pytest.fixture(scope="module")
def clusters(sim) -> Iterator[dict[str, Cluster]]:
    found = {name: Cluster(plane) for name, plane in sim.planes.items()}
    yield found
    for c in found.values():
        c.close()


@pytest.fixture(scope="module")
def harbor() -> Iterator[str]:
    with LiveServer(harbor_app({"theater-msa": True})) as server:
        yield server.url


def run_doctor(sim, harbor: str, kubeconfig: Path | None = None, **overrides: str):
    options = doctor.Options(kubeconfig=str(kubeconfig or sim.kubeconfig), overrides={"domain": DOMAIN, **overrides},
                             registry_url=harbor, timeout=10,
                             resolver=lambda host: [LB_IPS["ctx1"]] if host == f"theater.{DOMAIN}" else [])
    return doctor.Doctor(options).run()


def apply_fix(sim, command: str, api_change) -> None:
    """Run the fix as printed when kubectl is here; otherwise make the same change through the API."""
    if shutil.which("kubectl"):
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "KUBECONFIG": str(sim.kubeconfig)})
        assert done.returncode == 0, (command, done.stderr)
    else:
        api_change()


def test_doctor_on_a_ready_pair(sim, harbor: str, artifacts: Path) -> None:
    report = run_doctor(sim, harbor)
    (artifacts / "doctor.txt").write_text(report.render() + "\n")
    print("\n" + report.render())
    assert {k: report.get(k).status for k in CLUSTER_CHECKS} == {k: PASS for k in CLUSTER_CHECKS}, report.render()
    assert "Kubernetes v1.30" in report.get("context.ctx1").detail
    assert "Istio 1.28.0" in report.get("istio.ctx1").detail and "networking.istio.io: v1/" in report.get("istio.ctx2").detail
    assert "ctx1 설정 istio-system/*" in report.get("ingress-sa").detail  # Pulumi.yaml's default
    assert "192.0.2.12" in report.get("eastwest.ctx2").detail
    assert report.get("dns").status == PASS and "인그레스 게이트웨이 주소와 같음" in report.get("dns").detail
    assert report.get("registry").status == PASS and report.get("pulumi").status == PASS
    assert report.exit_code == 0


def test_doctor_finds_a_node_without_its_label(sim, clusters, harbor: str) -> None:
    ctx2 = clusters["ctx2"]
    r = ctx2.http.patch("/api/v1/nodes/ctx2-node-2", json={"metadata": {"labels": {"cluster-name": None}}}, headers=MERGE)
    assert r.status_code == 200, r.text
    report = run_doctor(sim, harbor)
    item = report.get("nodes.ctx2")
    assert item.status == FAIL and "ctx2-node-2(레이블 없음)" in item.detail, item
    assert item.fix == ["kubectl --context ctx2 label nodes ctx2-node-2 cluster-name=ctx2 --overwrite"]
    assert report.get("nodes.ctx1").status == PASS and report.exit_code == 1
    apply_fix(sim, item.fix[0], lambda: ctx2.http.patch(
        "/api/v1/nodes/ctx2-node-2", json={"metadata": {"labels": {"cluster-name": "ctx2"}}}, headers=MERGE))
    assert run_doctor(sim, harbor).get("nodes.ctx2").status == PASS


def test_doctor_finds_cp_gateway_deleted(sim, clusters, harbor: str) -> None:
    ctx1 = clusters["ctx1"]
    path = f"/apis/networking.istio.io/v1/namespaces/{ISTIO_NAMESPACE}/gateways/cp-gateway"
    assert ctx1.http.delete(path).status_code == 200
    report = run_doctor(sim, harbor)
    item = report.get("gateway")
    assert item.status == FAIL and "istio-system/cp-gateway Gateway 가 없습니다" in item.detail
    fix = item.fix[0]
    assert fix.startswith("echo '") and fix.endswith("' | kubectl --context ctx1 apply -f -") and "\n" not in fix
    manifest = json.loads(fix[len("echo '"):fix.rindex("'")])
    assert manifest["spec"]["servers"][0]["hosts"] == [f"theater.{DOMAIN}"]
    apply_fix(sim, fix, lambda: ctx1.http.post(f"/apis/networking.istio.io/v1beta1/namespaces/{ISTIO_NAMESPACE}/gateways",
                                               json=manifest).raise_for_status())
    again = run_doctor(sim, harbor)
    assert again.get("gateway").status == PASS, again.get("gateway")
    assert f"theater.{DOMAIN}" in again.get("gateway").detail


def test_doctor_finds_a_wrong_service_account_name(sim, harbor: str) -> None:
    report = run_doctor(sim, harbor, ingressServiceAccount="istio-system/istio-ingressgateway")
    item = report.get("ingress-sa")
    assert item.status == FAIL, item
    assert "istio-system/istio-ingressgateway (없는 SA)" in item.detail
    assert "게이트웨이 Pod 의 SA: istio-system/istio-ingressgateway-service-account" in item.detail
    assert item.fix == [f"pulumi config set theater-msa:ingressServiceAccount "
                        f"istio-system/istio-ingressgateway-service-account --stack {s}" for s in ("ctx1", "ctx2")]
    assert report.exit_code == 1


def test_doctor_finds_mesh_prerequisites_missing(sim, clusters, harbor: str) -> None:
    ctx1, ctx2 = clusters["ctx1"], clusters["ctx2"]
    secret_path = f"/api/v1/namespaces/{ISTIO_NAMESPACE}/secrets/istio-remote-secret-ctx2"
    secret = ctx1.get(secret_path).json()
    cm_path = f"/api/v1/namespaces/{ISTIO_NAMESPACE}/configmaps/istio-ca-root-cert"
    root = ctx2.get(cm_path).json()["data"]["root-cert.pem"]
    other = ctx1.get("/api/v1/namespaces/kube-system/configmaps/kube-root-ca.crt").json()["data"]["ca.crt"]
    try:
        assert ctx1.http.delete(secret_path).status_code == 200
        assert ctx2.http.patch(cm_path, json={"data": {"root-cert.pem": other}}, headers=MERGE).status_code == 200
        r = ctx2.http.patch(f"/api/v1/namespaces/{ISTIO_NAMESPACE}/services/istio-eastwestgateway/status",
                            json={"status": {"loadBalancer": {"ingress": None}}}, headers=MERGE)
        assert r.status_code == 200, r.text
        report = run_doctor(sim, harbor)
        secrets, ca, eastwest = report.get("remote-secrets.ctx1"), report.get("root-ca"), report.get("eastwest.ctx2")
        assert secrets.status == FAIL and secrets.fix == [
            "istioctl create-remote-secret --context=ctx2 --name=ctx2 | kubectl apply --context=ctx1 -f -"]
        assert report.get("remote-secrets.ctx2").status == PASS
        assert ca.status == FAIL and "루트 CA 가 다릅니다" in ca.detail
        assert eastwest.status == FAIL and "외부 주소가 없습니다" in eastwest.detail
        assert report.get("eastwest.ctx1").status == PASS
    finally:
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
            secret["metadata"].pop(key, None)
        ctx1.http.post(f"/api/v1/namespaces/{ISTIO_NAMESPACE}/secrets", json=secret)
        ctx2.http.patch(cm_path, json={"data": {"root-cert.pem": root}}, headers=MERGE)
        set_load_balancer_ip(ctx2.http, "istio-eastwestgateway", LB_IPS["ctx2"])
    assert {k: run_doctor(sim, harbor).get(k).status for k in ("remote-secrets.ctx1", "root-ca", "eastwest.ctx2")} == \
        {"remote-secrets.ctx1": PASS, "root-ca": PASS, "eastwest.ctx2": PASS}


def test_doctor_finds_a_context_with_another_name(sim, harbor: str, tmp_path: Path) -> None:
    config = yaml.safe_load(sim.kubeconfig.read_text())
    for ctx in config["contexts"]:
        if ctx["name"] == "ctx2":
            ctx["name"] = "nks-theater"
    renamed = tmp_path / "kubeconfig"
    renamed.write_text(yaml.safe_dump(config))
    report = run_doctor(sim, harbor, kubeconfig=renamed)
    item = report.get("context.ctx2")
    assert item.status == FAIL and "컨텍스트 'ctx2' 가 없습니다" in item.detail
    assert item.fix[0] == "kubectl config rename-context nks-theater ctx2"
    assert report.get("nodes.ctx2").status == SKIP and report.get("root-ca").status == SKIP
    assert report.get("nodes.ctx1").status == PASS and report.exit_code == 1


def test_doctor_on_istio_1_20(tmp_path_factory: pytest.TempPathFactory, harbor: str) -> None:
    """Istio 1.20 serves VirtualService, DestinationRule and PeerAuthentication as v1beta1 only: fine with
    the default istioApiVersion v1beta1, a blocking failure with istioApiVersion v1 (with the setting that fixes it)."""
    with running_sim(tmp_path_factory.mktemp("sim-istio-1.20"), istio="1.20.0") as old:
        default, v1 = run_doctor(old, harbor), run_doctor(old, harbor, istioApiVersion="v1")
    item = default.get("istio.ctx1")
    assert item.status == PASS and "Istio 1.20.0" in item.detail and "networking.istio.io: v1beta1/v1alpha3" in item.detail
    item = v1.get("istio.ctx1")
    assert item.status == FAIL and "virtualservices.networking.istio.io/v1" in item.detail
    assert "peerauthentications.security.istio.io/v1" in item.detail, item.detail
    assert item.fix[0].startswith("pulumi config set theater-msa:istioApiVersion v1beta1 --stack ctx1")


# ---------------------------------------------------------------- verify


def pod(name: str, app: str, node: str, sidecar: bool = True) -> dict:
    containers = [{"name": app, "image": f"harbor.{DOMAIN}/theater-msa/{app}@sha256:{'0' * 64}"}]
    if sidecar:
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.28.0"})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": catalog.labels(app)},
            "spec": {"nodeName": node, "containers": containers}}


def deploy_like_pulumi(clusters: dict[str, Cluster]) -> None:
    """What `pulumi up` leaves that verify reads: the namespace with the injection label,
    the app pods (with istio-proxy, as the injector would add it) on their home cluster's nodes,
    DestinationRules, PeerAuthentication STRICT and the edge VirtualService."""
    for name, c in clusters.items():
        c.http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": NS, "labels": {"istio-injection": "enabled"}}}).raise_for_status()
        for service in catalog.SERVICES:
            c.http.post(f"/apis/networking.istio.io/v1/namespaces/{NS}/destinationrules", json={
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": f"{service}-dr", "namespace": NS},
                "spec": {"host": f"{service}.{NS}.svc.cluster.local"}}).raise_for_status()
            if catalog.SERVICES[service].home == name:
                for i in (1, 2):
                    c.http.post(f"/api/v1/namespaces/{NS}/pods", json=pod(f"{service}-{i}", service, f"{name}-node-{i}")
                                ).raise_for_status()
        c.http.post(f"/apis/security.istio.io/v1/namespaces/{NS}/peerauthentications", json={
            "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": NS}, "spec": {"mtls": {"mode": "STRICT"}}}).raise_for_status()
    clusters["ctx1"].http.post(f"/apis/networking.istio.io/v1/namespaces/{ISTIO_NAMESPACE}/virtualservices", json={
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": NS, "namespace": ISTIO_NAMESPACE},
        "spec": {"hosts": [f"theater.{DOMAIN}"], "gateways": ["istio-system/cp-gateway"],
                 "http": [{"route": [{"destination": {"host": f"api-gateway.{NS}.svc.cluster.local"}}]}]}}
    ).raise_for_status()


def pods_running(clusters: dict[str, Cluster]) -> bool:
    pods = [p for c in clusters.values() for p in c.pods()]
    return bool(pods) and all((p.get("status") or {}).get("phase") == "Running" and all(
        s.get("ready") for s in (p.get("status") or {}).get("containerStatuses") or [{}]) for p in pods)


@pytest.fixture(scope="module")
def deployed(sim, clusters, redis_server: RedisServer) -> Iterator[MeshLike]:
    from tests.e2e.clusters import wait_for

    deploy_like_pulumi(clusters)
    wait_for(lambda: pods_running(clusters), 90, "the app pods Running and ready (kwok)")
    mesh = MeshLike(redis_server.url).start()
    yield mesh
    mesh.stop()


def run_verify(sim, mesh: MeshLike, telemetry_url: str):
    options = verify.Options(kubeconfig=str(sim.kubeconfig), overrides={"domain": DOMAIN}, url=mesh.url,
                             prometheus_url=telemetry_url, jaeger_url=telemetry_url, kiali_url=telemetry_url + "/kiali")
    return verify.Verify(options).run()


@pytest.fixture
def telemetry_url() -> Iterator[str]:
    data = Telemetry(series=healthy_series(), traces=[booking_trace()], graph=kiali_graph(cross=True))
    with LiveServer(data.app()) as server:
        yield server.url


def test_verify_a_deployed_pair(sim, deployed: MeshLike, telemetry_url: str, artifacts: Path) -> None:
    report = run_verify(sim, deployed, telemetry_url)
    (artifacts / "verify.txt").write_text(report.render() + "\n")
    print("\n" + report.render())
    failures = [r for r in report.results if r.status == FAIL]
    assert not failures, report.render()
    assert report.get("placement.movie-service").detail.startswith("ctx2: movie-service-1@ctx2-node-1")
    assert "2/2 Running" in report.get("sidecars.ctx1").detail
    assert report.get("injection.ctx2").detail == "istio-injection=enabled"
    assert "STRICT" in report.get("istio-objects.ctx2").detail
    assert report.exit_code == 0


def test_verify_finds_what_is_wrong_in_the_clusters(sim, clusters, deployed: MeshLike, telemetry_url: str) -> None:
    ctx1, ctx2 = clusters["ctx1"], clusters["ctx2"]
    ctx2.http.post(f"/api/v1/namespaces/{NS}/pods", json=pod("booking-service-nosidecar", "booking-service",
                                                             "ctx2-node-1", sidecar=False)).raise_for_status()
    ctx1.http.post(f"/api/v1/namespaces/{NS}/pods", json=pod("movie-service-stray", "movie-service", "ctx1-node-1")
                   ).raise_for_status()
    ctx1.http.patch(f"/api/v1/namespaces/{NS}", json={"metadata": {"labels": {"istio-injection": None}}},
                    headers=MERGE).raise_for_status()
    ctx2.http.delete(f"/apis/networking.istio.io/v1/namespaces/{NS}/destinationrules/user-service-dr").raise_for_status()
    try:
        report = run_verify(sim, deployed, telemetry_url)
        print("\n" + report.render())
        sidecars, placement = report.get("sidecars.ctx2"), report.get("placement.movie-service")
        assert sidecars.status == FAIL and "booking-service-nosidecar" in sidecars.detail and "istio-proxy 없음" in sidecars.detail
        assert placement.status == FAIL and "ctx1:movie-service-stray" in placement.detail
        assert report.get("injection.ctx1").status == FAIL
        assert report.get("injection.ctx1").fix[0] == f"kubectl --context ctx1 label namespace {NS} istio-injection=enabled --overwrite"
        objects = report.get("istio-objects.ctx2")
        assert objects.status == FAIL and "user-service-dr" in objects.detail
        assert report.get("placement.user-service").status == PASS and report.exit_code == 1
    finally:
        ctx2.http.delete(f"/api/v1/namespaces/{NS}/pods/booking-service-nosidecar?gracePeriodSeconds=0")
        ctx1.http.delete(f"/api/v1/namespaces/{NS}/pods/movie-service-stray?gracePeriodSeconds=0")
