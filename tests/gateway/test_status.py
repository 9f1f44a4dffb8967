"""GET /api/status against stand-in Kubernetes API servers reached through
kubeconfig files, including RBAC 403s, bad tokens, and clusters that are
down, slow or not configured."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from services import catalog
from services.api_gateway import create_app
from services.common.settings import Settings
from services.launcher import LiveServer, free_port
from services.status.clusters import read_cluster
from services.status.sources import cluster_sources
from tests.gateway import fake_kube as fk
from tests.gateway.standins import echo_backend


@pytest.fixture(autouse=True)
def not_in_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI may itself run in a pod: these tests describe a gateway outside one."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[dict]:
    one, two = fk.ctx1_cluster(), fk.ctx2_cluster()
    with LiveServer(one.app()) as s1, LiveServer(two.app()) as s2:
        yield {"ctx1": (one, s1), "ctx2": (two, s2)}


def gateway_settings(tmp_path: Path, **kw) -> Settings:
    base = Settings(service="api-gateway", cluster="ctx1", pod="gw-pod", node="ctx1-worker",
                    peers={s.name: f"http://127.0.0.1:{free_port()}" for s in catalog.ROUTED.values()},
                    peer_timeout=1.0, k8s_timeout=1.0, status_cache_seconds=0.0)
    return replace(base, **kw)


def get_status(settings: Settings) -> tuple[dict, float]:
    with LiveServer(create_app(settings)) as gw:
        start = time.perf_counter()
        r = httpx.get(gw.url + "/api/status", timeout=10)
        elapsed = time.perf_counter() - start
    assert r.status_code == 200, r.text
    return r.json(), elapsed


def by_name(status: dict) -> dict:
    return {c["name"]: c for c in status["clusters"]}


def test_both_clusters_read_through_kubeconfigs(tmp_path: Path, fakes: dict) -> None:
    (one, s1), (two, s2) = fakes["ctx1"], fakes["ctx2"]
    local_cfg = fk.write_kubeconfig(tmp_path / "local.yaml", s1.url, one.token, "ctx1")
    # The remote one as a mounted Secret: a directory holding `config`, whose
    # current-context is a decoy: the context named ctx2 must be used.
    fk.write_kubeconfig(tmp_path / "remote" / "config", s2.url, two.token, "ctx2", extra_context="decoy")
    settings = gateway_settings(tmp_path, local_kubeconfig=local_cfg, remote_kubeconfig=tmp_path / "remote")
    status, _ = get_status(settings)

    assert status["namespace"] == "theater-msa"
    c = by_name(status)
    assert [x["name"] for x in status["clusters"]] == ["ctx1", "ctx2"]
    assert c["ctx1"]["source"] == "kubeconfig" and c["ctx1"]["role"] == "local"
    assert c["ctx2"]["source"] == "kubeconfig" and c["ctx2"]["role"] == "remote"
    for name in ("ctx1", "ctx2"):
        assert c[name]["reachable"] is True, c[name]
        assert c[name]["error"] is None and c[name]["forbidden"] == []
    # Each fake saw its own token on each of the three list calls.
    assert {p for p, _ in one.hits} == {"/api/v1/nodes", "/apis/apps/v1/namespaces/theater-msa/deployments",
                                        "/api/v1/namespaces/theater-msa/pods"}
    assert {a for _, a in one.hits} == {"Bearer token-ctx1"}
    assert {a for _, a in two.hits} == {"Bearer token-ctx2"}

    nodes = {n["name"]: n for n in c["ctx1"]["nodes"]}
    assert nodes["ctx1-control-plane"]["roles"] == ["control-plane"]
    assert nodes["ctx1-worker"]["clusterLabel"] == "ctx1" and nodes["ctx1-worker"]["ready"] is True
    assert c["ctx2"]["nodes"][0]["ready"] is False and c["ctx2"]["nodes"][0]["clusterLabel"] == "ctx2"

    deps = {d["name"]: d for d in c["ctx1"]["deployments"]}
    assert (deps["user-service"]["ready"], deps["user-service"]["desired"]) == (1, 2)
    assert (deps["api-gateway"]["ready"], deps["api-gateway"]["desired"]) == (1, 1)
    booking = {d["name"]: d for d in c["ctx2"]["deployments"]}["booking-service"]
    assert (booking["ready"], booking["desired"]) == (0, 1)

    pods = {p["name"]: p for p in c["ctx1"]["pods"]}
    gw = pods["api-gateway-7d9f8c6b5-abcde"]
    assert gw["node"] == "ctx1-worker" and gw["phase"] == "Running" and gw["ready"] is True
    assert gw["restarts"] == 3  # 2 in the app container + 1 in istio-proxy
    assert (gw["readyContainers"], gw["containers"]) == (2, 2)
    assert 3720 <= gw["ageSeconds"] <= 3800
    crashing = pods["user-service-7d9f8c6b5-klmno"]
    assert crashing["ready"] is False and crashing["waitingReason"] == "CrashLoopBackOff"
    assert crashing["readyContainers"] == 1
    # Clusters answered, and this is not a pod: the local services are shown too.
    assert status["local"] is not None


def test_missing_rbac_is_reported_per_resource(tmp_path: Path, fakes: dict) -> None:
    (one, s1), (two, s2) = fakes["ctx1"], fakes["ctx2"]
    two.forbidden = {"nodes"}  # Role in the namespace, but no ClusterRole for nodes
    one.forbidden = {"nodes", "deployments", "pods"}  # no RBAC at all
    settings = gateway_settings(
        tmp_path,
        local_kubeconfig=fk.write_kubeconfig(tmp_path / "l.yaml", s1.url, one.token, "ctx1"),
        remote_kubeconfig=fk.write_kubeconfig(tmp_path / "r.yaml", s2.url, two.token, "ctx2"),
    )
    c = by_name(get_status(settings)[0])

    ctx2 = c["ctx2"]
    assert ctx2["reachable"] is True and ctx2["reason"] == "forbidden"
    assert ctx2["forbidden"] == ["nodes"]
    assert "nodes" in ctx2["error"] and "ClusterRole" in ctx2["error"]
    assert fk.SA_USER in ctx2["error"]  # the API server's own words are kept
    assert ctx2["nodes"] == [] and [p["name"] for p in ctx2["pods"]] == ["movie-service-5c6d7e8f9-pqrst"]

    ctx1 = c["ctx1"]
    assert ctx1["reachable"] is True and ctx1["reason"] == "forbidden"
    assert sorted(ctx1["forbidden"]) == ["deployments", "nodes", "pods"]
    assert "Role + RoleBinding" in ctx1["error"] and "API group apps" in ctx1["error"]
    assert ctx1["pods"] == [] and ctx1["deployments"] == []


def test_wrong_token_is_unauthorized(tmp_path: Path, fakes: dict) -> None:
    _, s2 = fakes["ctx2"]
    settings = gateway_settings(tmp_path, remote_kubeconfig=fk.write_kubeconfig(tmp_path / "r.yaml", s2.url, "stale", "ctx2"))
    ctx2 = by_name(get_status(settings)[0])["ctx2"]
    assert ctx2["reachable"] is True and ctx2["reason"] == "unauthorized"
    assert "401" in ctx2["error"]


def closed_port() -> int:
    port = free_port()
    with socket.socket() as s:  # nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return port


def test_unreachable_and_unconfigured_clusters(tmp_path: Path) -> None:
    down = fk.write_kubeconfig(tmp_path / "down.yaml", f"http://127.0.0.1:{closed_port()}", "t", "ctx2")
    settings = gateway_settings(tmp_path, remote_kubeconfig=down)
    status, elapsed = get_status(settings)
    c = by_name(status)
    assert status["mode"] == "kubernetes"  # a cluster is configured, even if down
    assert c["ctx2"]["source"] == "kubeconfig"
    assert c["ctx2"]["reachable"] is False and c["ctx2"]["reason"] == "unreachable"
    assert "cannot connect" in c["ctx2"]["error"]
    # Not in a pod and no LOCAL_KUBECONFIG: ctx1 says why it is not shown.
    assert c["ctx1"]["source"] == "none" and c["ctx1"]["reason"] == "not_in_cluster"
    assert "KUBERNETES_SERVICE_HOST" in c["ctx1"]["error"]
    assert elapsed < 3

    # No remote kubeconfig at all.
    c = by_name(get_status(gateway_settings(tmp_path))[0])
    assert c["ctx2"]["source"] == "none" and c["ctx2"]["reason"] == "not_configured"
    assert "REMOTE_KUBECONFIG" in c["ctx2"]["error"]

    # REMOTE_KUBECONFIG set (as the Deployment always does) but the optional
    # Secret is not mounted: "not configured", naming the path.
    for absent in (tmp_path / "missing.yaml", tmp_path / "empty-dir"):
        if absent.suffix != ".yaml":
            absent.mkdir()
        c = by_name(get_status(gateway_settings(tmp_path, remote_kubeconfig=absent))[0])
        assert c["ctx2"]["source"] == "none" and c["ctx2"]["reason"] == "not_configured", c["ctx2"]
        assert str(absent) in c["ctx2"]["error"]

    # A file that is not a kubeconfig.
    (tmp_path / "junk.yaml").write_text("clusters: [[[")
    c = by_name(get_status(gateway_settings(tmp_path, remote_kubeconfig=tmp_path / "junk.yaml"))[0])
    assert c["ctx2"]["reason"] == "config_error" and c["ctx2"]["reachable"] is False, c["ctx2"]


def test_slow_api_server_times_out(tmp_path: Path, fakes: dict) -> None:
    two, s2 = fakes["ctx2"]
    two.delay = 3.0
    settings = gateway_settings(
        tmp_path, k8s_timeout=0.5, remote_kubeconfig=fk.write_kubeconfig(tmp_path / "r.yaml", s2.url, two.token, "ctx2")
    )
    status, elapsed = get_status(settings)
    ctx2 = by_name(status)["ctx2"]
    assert ctx2["reachable"] is False and ctx2["reason"] == "timeout", ctx2
    assert elapsed < 2.0


def test_local_services_shown_when_no_cluster(tmp_path: Path) -> None:
    users = LiveServer(echo_backend("user-service", cluster="local", pod="laptop")).start()
    try:
        peers = {s.name: f"http://127.0.0.1:{closed_port()}" for s in catalog.ROUTED.values()}
        peers["user-service"] = users.url
        status, _ = get_status(gateway_settings(tmp_path, peers=peers))
    finally:
        users.stop()
    assert status["mode"] == "local"  # no cluster configured at all: the laptop run
    local = {e["service"]: e for e in status["local"]}
    assert set(local) == {"api-gateway", "user-service", "movie-service", "booking-service"}
    assert local["user-service"]["healthy"] and local["user-service"]["ready"]
    assert local["user-service"]["info"]["pod"] == "laptop" and local["user-service"]["error"] is None
    assert local["movie-service"]["healthy"] is False and "cannot connect" in local["movie-service"]["error"]
    assert local["api-gateway"]["info"]["pod"] == "gw-pod"


def test_answers_are_cached_and_shared(tmp_path: Path, fakes: dict) -> None:
    two, s2 = fakes["ctx2"]
    settings = gateway_settings(
        tmp_path, status_cache_seconds=1.0, remote_kubeconfig=fk.write_kubeconfig(tmp_path / "r.yaml", s2.url, two.token, "ctx2")
    )
    with LiveServer(create_app(settings)) as gw:

        async def many() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=10) as client:
                return await asyncio.gather(*(client.get(gw.url + "/api/status") for _ in range(20)))

        answers = asyncio.run(many())
        assert all(r.status_code == 200 for r in answers)
        assert len({r.json()["generatedAt"] for r in answers}) == 1
        assert len(two.hits) == 3  # one fetch (3 list calls) for 20 browsers
        time.sleep(1.1)
        httpx.get(gw.url + "/api/status", timeout=10)
        assert len(two.hits) == 6  # expired: fetched again


def test_source_selection_prefers_in_cluster_service_account(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, cluster="ctx2")
    sources = {s.name: s for s in cluster_sources(settings, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"})}
    assert sources["ctx2"].kind == "in-cluster" and sources["ctx2"].role == "local"
    assert sources["ctx1"].role == "remote"
    # A pod whose token is not mounted (automountServiceAccountToken: false)
    # gets an explanation, not a crash.
    if not Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
        result = asyncio.run(read_cluster(sources["ctx2"], "theater-msa", 1.0))
        assert result["reason"] == "config_error" and result["reachable"] is False
        assert "token" in result["error"]
    # LOCAL_KUBECONFIG wins over the in-cluster config (out-of-cluster runs).
    with_file = replace(settings, local_kubeconfig=tmp_path / "k.yaml")
    sources = {s.name: s for s in cluster_sources(with_file, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"})}
    assert sources["ctx2"].kind == "kubeconfig"


def test_cluster_clients_are_built_off_the_event_loop_and_reused_until_the_kubeconfig_changes(
    tmp_path: Path, fakes: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building a lightkube client loads the CA bundle (up to a second of CPU
    on a busy machine): done on the event loop at every poll, it starved the
    gateway's other calls. It is built in a worker thread, once per
    kubeconfig, and again when the file changes (a token put right)."""
    import threading

    from services.status import StatusReader
    from services.status.sources import ClusterSource

    _, s2 = fakes["ctx2"]
    two = fakes["ctx2"][0]
    remote = fk.write_kubeconfig(tmp_path / "remote.yaml", s2.url, "stale", "ctx2")
    settings = gateway_settings(tmp_path, remote_kubeconfig=remote)
    built_on: list[threading.Thread] = []
    real_config = ClusterSource.config

    def recording_config(self: ClusterSource):
        built_on.append(threading.current_thread())
        return real_config(self)

    monkeypatch.setattr(ClusterSource, "config", recording_config)

    async def scenario() -> list[dict]:
        from services.common.peers import http_client

        reader = StatusReader(settings, http_client(settings))
        loop_thread = threading.current_thread()
        answers = [by_name(await reader.status())["ctx2"] for _ in range(3)]
        assert len(built_on) == 1 and built_on[0] is not loop_thread, built_on
        fk.write_kubeconfig(remote, s2.url, two.token, "ctx2")  # the right token now
        answers.append(by_name(await reader.status())["ctx2"])
        assert len(built_on) == 2 and built_on[1] is not loop_thread, built_on
        await reader.clients.aclose()
        await reader.http.aclose()
        return answers

    answers = asyncio.run(scenario())
    assert [a["reason"] for a in answers[:3]] == ["unauthorized"] * 3
    assert answers[3]["reason"] is None and answers[3]["reachable"] is True, answers[3]


class TlsLiveServer:
    """uvicorn with TLS in a thread: lightkube's in-cluster config always speaks https."""

    def __init__(self, app, cert: Path, key: Path) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                ssl_certfile=str(cert), ssl_keyfile=str(key), timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "TlsLiveServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn (TLS) did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def service_account_dir(directory: Path, token: str, ca: Path) -> Path:
    """What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount."""
    directory.mkdir(parents=True)
    (directory / "token").write_text(token)
    (directory / "namespace").write_text(catalog.NAMESPACE)
    (directory / "ca.crt").write_bytes(ca.read_bytes())
    return directory


def test_in_cluster_status_reads_the_own_cluster_through_the_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 22, found in a real pod): api-gateway's /api/status for
    its own cluster answered `config_error: 'KubeConfig' object has no attribute
    'cluster'`. lightkube's real from_service_account() reads a service-account
    directory laid out as the kubelet mounts it, and KUBERNETES_SERVICE_HOST/PORT;
    the API server is a TLS stand-in whose certificate that ca.crt signs."""
    from services.status import sources
    from sim.certs import make_ca, server_cert

    ca = make_ca(tmp_path / "ca", "test-cluster-ca")
    cert, key = server_cert(tmp_path / "tls", "apiserver", ca, ["IP:127.0.0.1"])
    one = fk.ctx1_cluster()
    sa_dir = service_account_dir(tmp_path / "serviceaccount", one.token, ca[0])
    with TlsLiveServer(one.app(), cert, key) as api:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
        monkeypatch.setattr(sources, "SERVICE_ACCOUNT_DIR", str(sa_dir))
        status, _ = get_status(gateway_settings(tmp_path, cluster="ctx1"))
    own = by_name(status)["ctx1"]
    assert own["source"] == "in-cluster" and own["role"] == "local", own
    assert own.get("reason") is None and own["reachable"] is True, own.get("error")
    assert own["server"] == f"https://127.0.0.1:{api.port}"
    assert {n["name"] for n in own["nodes"]} == {"ctx1-control-plane", "ctx1-worker"}
    # Every call carried the mounted token.
    assert one.hits and {auth for _, auth in one.hits} == {f"Bearer {one.token}"}
