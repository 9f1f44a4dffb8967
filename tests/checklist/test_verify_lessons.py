"""`theater verify`'s canary, A/B and failover items (--no-kubernetes),
against the real services with movie-service v1 and v2 running: the split
they see is what the gateway's turns give (4 of 5 calls to v1 stand for the
weights 80/20), and the A/B edge is a stand-in that routes by header."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checklist.report import FAIL, PASS, SKIP
from checklist.verify import CANARY_CALLS, CANARY_TOLERANCE, Options, Verify
from services.launcher import LiveServer
from services.redis_server import RedisServer
from tests.checklist.servers import VersionedMesh, ab_edge

CANARY = {"v2Cluster": "ctx1", "canary": '{"v1": 80, "v2": 20}'}


def keys(report) -> set[str]:
    return {r.key for r in report.results}


def verify(url: str, **overrides: str):
    return Verify(Options(url=url, skip_kubernetes=True, overrides=overrides, timeout=10, write=False)).run()


@pytest.fixture(scope="module")
def canary_mesh(redis_server: RedisServer) -> Iterator[VersionedMesh]:
    mesh = VersionedMesh(redis_server.url).start()
    yield mesh
    mesh.stop()


def test_canary_split_within_the_tolerance_passes(canary_mesh: VersionedMesh) -> None:
    report = verify(canary_mesh.url, **CANARY)
    item = report.get("lessons.canary")
    assert item.status == PASS, report.render()
    assert f"GET /movies/ {CANARY_CALLS}회: v1 80회, v2 20회 → v2 20% (설정 20%, 허용 ±{CANARY_TOLERANCE}%p)" in item.detail
    # v2 answering from ctx1 is the lesson, not a broken cross-cluster route.
    assert report.get("mesh.cross.gateway-movie").status == PASS, report.render()
    assert not {"lessons.ab", "lessons.failover"} & keys(report)


def test_canary_split_outside_the_tolerance_fails(canary_mesh: VersionedMesh) -> None:
    report = verify(canary_mesh.url, v2Cluster="ctx1", canary='{"v1": 50, "v2": 50}')
    item = report.get("lessons.canary")
    assert item.status == FAIL
    assert "v2 20% (설정 50%" in item.detail
    assert any("movie-service-dr" in fix for fix in item.fix), item.fix


def test_no_canary_no_item(canary_mesh: VersionedMesh) -> None:
    report = verify(canary_mesh.url)
    assert "lessons.canary" not in keys(report) and report.get("lessons").status == SKIP


def test_ab_header_to_v2(canary_mesh: VersionedMesh) -> None:
    servers = canary_mesh.servers
    ab = '{"header": "x-theater-group", "value": "beta"}'
    edge = ab_edge(canary_mesh.url, servers["movie-service"].url, servers["movie-service-v2"].url, "x-theater-group", "beta")
    with LiveServer(edge) as good:
        assert verify(good.url, v2Cluster="ctx1", abTest=ab).get("lessons.ab").status == PASS
    # An edge that ignores the header (the VirtualService has no match): FAIL, naming what was seen.
    with LiveServer(ab_edge(canary_mesh.url, servers["movie-service"].url, servers["movie-service"].url, "x", "y")) as ignores:
        item = verify(ignores.url, v2Cluster="ctx1", abTest=ab).get("lessons.ab")
    assert item.status == FAIL
    assert "x-theater-group: beta 를 붙인 20회 중 v2 0회" in item.detail


def test_failover_prefers_the_ingress_cluster(redis_server: RedisServer) -> None:
    local = VersionedMesh(redis_server.url, v1_share=1, v2_share=0, movie_cluster="ctx1").start()
    try:
        item = verify(local.url, failover="true").get("lessons.failover")
        assert item.status == PASS, item.detail
        assert "ctx1 20회" in item.detail
    finally:
        local.stop()
    remote = VersionedMesh(redis_server.url, v1_share=1, v2_share=0, movie_cluster="ctx2").start()
    try:
        report = verify(remote.url, failover="true")
        item = report.get("lessons.failover")
        assert item.status == FAIL and "ctx2 20회" in item.detail and "기대: ctx1" in item.detail
        # The cross-cluster item does not blame the lesson's preference for its own cluster.
        assert report.get("mesh.cross.gateway-movie").status == SKIP
    finally:
        remote.stop()


# ------------------------------------------------------------------ the lesson's pods must be Ready

def deployment(name: str, version: str, replicas: int, ready: int) -> dict:
    """A Deployment as the API server lists it (the fields verify reads)."""
    status = {"replicas": replicas, **({"readyReplicas": ready} if ready else {})}
    return {"metadata": {"name": name, "namespace": "theater-msa"},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": "movie-service", "version": version}}}},
            "status": status}


class Listed:
    """One cluster's Deployment list, served the way checklist.kube.Cluster.items returns it."""

    def __init__(self, name: str, deployments: list[dict]) -> None:
        self.name, self.deployments = name, deployments

    def items(self, path: str) -> list[dict]:
        assert path == "/apis/apps/v1/namespaces/theater-msa/deployments", path
        return self.deployments

    def get(self, path: str) -> dict | None:
        return None  # anything else (Prometheus' Service, say) is not there: 404

    def close(self) -> None:
        pass


def verify_with(url: str, deployments: dict[str, list[dict]], **overrides: str):
    v = Verify(Options(url=url, skip_kubernetes=True, overrides=overrides, timeout=10, write=False))
    v.clusters = {name: Listed(name, items) for name, items in deployments.items()}
    return v.run()


def test_failover_fails_when_the_local_copy_is_not_ready(redis_server: RedisServer) -> None:
    """The old check passed whenever ctx1 had no ready pod, taking it for the
    lesson's scale-down: a failover copy that cannot reach ctx2's Redis
    (/readyz 503) looked like a working failover."""
    remote = VersionedMesh(redis_server.url, v1_share=1, v2_share=0, movie_cluster="ctx2").start()
    try:
        broken = {"ctx1": [deployment("movie-service", "v1", 2, 0)], "ctx2": [deployment("movie-service", "v1", 2, 2)]}
        item = verify_with(remote.url, broken, failover="true").get("lessons.failover")
        assert item.status == FAIL, item.detail
        assert "ctx1:movie-service 준비 0/2" in item.detail
        assert any("logs deploy/movie-service" in fix for fix in item.fix), item.fix
        # Scaled to 0 on purpose (the lesson's step): the other cluster answering is the failover.
        scaled = {"ctx1": [deployment("movie-service", "v1", 0, 0)], "ctx2": [deployment("movie-service", "v1", 2, 2)]}
        item = verify_with(remote.url, scaled, failover="true").get("lessons.failover")
        assert item.status == PASS, item.detail
        assert "0개로 줄임" in item.detail and "ctx2 20회" in item.detail
    finally:
        remote.stop()


def test_canary_and_ab_fail_when_v2_is_not_ready(canary_mesh: VersionedMesh) -> None:
    v2_down = {"ctx1": [deployment("movie-service-v2", "v2", 2, 1)], "ctx2": [deployment("movie-service", "v1", 2, 2)]}
    ab = '{"header": "x-theater-group", "value": "beta"}'
    report = verify_with(canary_mesh.url, v2_down, **CANARY, abTest=ab)
    for key in ("lessons.canary", "lessons.ab"):
        item = report.get(key)
        assert item.status == FAIL and "ctx1:movie-service-v2 준비 1/2" in item.detail, (key, item.detail)
    v2_up = {"ctx1": [deployment("movie-service-v2", "v2", 2, 2)], "ctx2": [deployment("movie-service", "v1", 2, 2)]}
    assert verify_with(canary_mesh.url, v2_up, **CANARY).get("lessons.canary").status == PASS
    # No v2 Deployment at all (v2Cluster set on the ingress stack only, say).
    item = verify_with(canary_mesh.url, {"ctx1": [], "ctx2": v2_up["ctx2"]}, **CANARY).get("lessons.canary")
    assert item.status == FAIL and "Deployment 가 없거나" in item.detail


# ------------------------------------------------------------------ an image for another CPU

def app_pod(name: str, node: str, movie_state: dict, last: dict | None = None) -> dict:
    """A movie-service pod as the API server lists it, its app container in `movie_state`."""
    return {"metadata": {"name": name, "labels": {"app": "movie-service", "version": "v1"}},
            "spec": {"nodeName": node, "containers": [{"name": "movie-service"}, {"name": "istio-proxy"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "movie-service", "ready": False, "state": movie_state, "lastState": last or {}},
                {"name": "istio-proxy", "ready": True, "state": {"running": {}}}]}}


def test_an_image_for_another_cpu_is_named() -> None:
    """An arm64 image (built on Apple silicon with buildImages false) on NKS's
    amd64 nodes: runc's execve fails and the kubelet reports StartError."""
    start_error = {"terminated": {"reason": "StartError", "exitCode": 128, "message":
                   "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                   "runc create failed: unable to start container process: exec: \"python\": exec format error: unknown"}}
    backoff = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}
    v = Verify(Options(url="http://127.0.0.1:9", skip_kubernetes=True, write=False))
    v.stacks = {"ctx2": type("S", (), {"kube_context": "ctx2"})()}
    item = v.sidecar_item("ctx2", [app_pod("movie-service-1", "ctx2-node-1", backoff, start_error)], {"ctx2-node-1": "amd64"})
    assert item.status == FAIL
    assert "movie-service-1/movie-service: exec format error" in item.detail and "노드(amd64)" in item.detail
    assert any("--platform linux/amd64" in fix for fix in item.fix)
    # Any other crash is the usual 1/2 item, without the platform story.
    crash = {"terminated": {"reason": "Error", "exitCode": 1, "message": "Traceback ..."}}
    item = v.sidecar_item("ctx2", [app_pod("movie-service-1", "ctx2-node-1", backoff, crash)], {"ctx2-node-1": "amd64"})
    assert item.status == FAIL and "exec format error" not in item.detail and "1/2" in item.detail
