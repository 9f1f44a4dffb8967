"""The README's deployment, for real: `pulumi up --stack ctx1`, `pulumi up
--stack ctx2` and the remoteStatusStack step, with the real CLI and
Kubernetes provider, against two real API servers with a real scheduler and
controller manager (kwok plays the nodes). Then destroy.

The tests of this module run in order on one deployment.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml

from services import catalog
from services.api_gateway import create_app
from services.common.settings import Settings
from services.launcher import LiveServer
from tests.e2e.clusters import NS, Cluster, running_sim, wait_for
from tests.e2e.stack import Workspace, record_timing

ISTIO_NS = "istio-system"
APPS = catalog.SERVICES
DOMAIN = "sim.example"


def stack_settings(sim, cluster: str) -> dict[str, str]:
    # dashboardApiServer stays unset: the program takes the context's server from the kubeconfig.
    # redisStorageClass emptyDir: the simulated clusters provision no volumes, and a claim
    # that never binds would keep Redis Pending (the default is a claim on the default class).
    return {"domain": DOMAIN, "kubeContext": cluster, "buildImages": "false", "redisStorageClass": "emptyDir"}


class Deployment:
    def __init__(self, sim, ws: Workspace) -> None:
        self.sim = sim
        self.ws = ws
        self.clusters = {name: Cluster(plane) for name, plane in sim.planes.items()}
        self.timings: dict[str, float] = {}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, artifacts: Path, pulumi_version: str) -> Iterator[Deployment]:
    suite_started = time.monotonic()
    with running_sim(tmp_path_factory.mktemp("sim"), istio="current") as sim:
        ws = Workspace.create(tmp_path_factory.mktemp("pulumi"), sim.kubeconfig, artifacts / "deploy")
        for cluster in catalog.CLUSTERS:
            ws.init_stack(cluster, stack_settings(sim, cluster), {"harborPassword": "not-used"})
        d = Deployment(sim, ws)
        ws.run("preview", "--stack", "ctx1", label="preview-ctx1-first")
        for step, stack in (("up-ctx1", "ctx1"), ("up-ctx2", "ctx2")):
            started = time.monotonic()
            ws.up(stack)
            d.timings[step] = time.monotonic() - started
            record_timing(step, d.timings[step], note="first pulumi up, Istio current")
        ws.run("config", "set", "theater-msa:remoteStatusStack", "organization/theater-msa/ctx2", "--stack", "ctx1")
        started = time.monotonic()
        ws.up("ctx1")
        record_timing("up-ctx1-remote-status", time.monotonic() - started)
        yield d
        for c in d.clusters.values():
            c.close()
    record_timing("deploy-module", time.monotonic() - suite_started, note="sim up + 3 ups + checks + destroy")


def test_every_object_is_where_the_seed_looks_for_it(deployment: Deployment) -> None:
    c1, c2 = deployment.clusters["ctx1"], deployment.clusters["ctx2"]
    # `kubectl get vs -n istio-system theater-msa` (ctx1 only: the ingress cluster)
    assert ("VirtualService", "theater-msa") in c1.istio_objects(ISTIO_NS)
    assert ("VirtualService", "theater-msa") not in c2.istio_objects(ISTIO_NS)
    for c in (c1, c2):
        assert c.exists(f"/api/v1/namespaces/{NS}"), c.name
        istio = c.istio_objects(NS)
        # `kubectl get destinationrule user-service-dr` and friends, in both clusters
        for svc in catalog.SERVICES.values():
            assert ("DestinationRule", f"{svc.name}-dr") in istio, (c.name, istio)
            assert c.exists(f"/api/v1/namespaces/{NS}/services/{svc.name}"), (c.name, svc.name)
        assert any(kind == "PeerAuthentication" for kind, _ in istio)
        assert any(kind == "AuthorizationPolicy" for kind, _ in istio)
        # Both clusters' Redis Services in each cluster; no shared `redis` Service.
        for cluster in catalog.CLUSTERS:
            assert c.exists(f"/api/v1/namespaces/{NS}/services/{catalog.REDIS.service_name(cluster)}"), (c.name, cluster)
        assert not c.exists(f"/api/v1/namespaces/{NS}/services/redis")
        deployments = {d["metadata"]["name"] for d in c.items(f"/apis/apps/v1/namespaces/{NS}/deployments")}
        homes = {s.name for s in catalog.SERVICES.values() if s.home == c.name}
        assert deployments == homes | {"redis"}, (c.name, deployments)
        # The API server kept the pod-spec fields an older one would drop (preStop sleep: 1.30).
        budgets = {b["metadata"]["name"] for b in c.items(f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets")}
        assert budgets == homes, (c.name, budgets)
        for d in c.items(f"/apis/apps/v1/namespaces/{NS}/deployments"):
            if d["metadata"]["name"] in homes:
                (container,) = d["spec"]["template"]["spec"]["containers"]
                assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0, d["metadata"]["name"]


def redis_endpoints(cluster: Cluster, service: str) -> list[str]:
    """Ready endpoint addresses of a Service, as the EndpointSlice controller wrote them."""
    slices = cluster.items(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices?labelSelector=kubernetes.io/service-name={service}")
    return sorted(a for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
                  for a in e["addresses"])


def test_each_redis_service_selects_only_its_cluster_redis(deployment: Deployment) -> None:
    """redis-<c> has c's Redis pod as endpoint in c, and none in the other cluster:
    Istio then sends a client anywhere in the mesh to c's Redis."""
    for name, c in deployment.clusters.items():
        (redis_pod,) = [p for p in c.pods() if p["metadata"]["labels"].get(catalog.APP_LABEL) == "redis"]
        ip = wait_for(lambda c=c: redis_pod_ip(c), 60, f"{name}: Redis pod IP")
        mine = wait_for(lambda c=c, name=name: redis_endpoints(c, catalog.REDIS.service_name(name)), 60,
                        f"{name}: endpoints of redis-{name}")
        assert mine == [ip], (name, mine, ip)
        for other in catalog.CLUSTERS:
            if other != name:
                assert redis_endpoints(c, catalog.REDIS.service_name(other)) == [], (name, other)


def redis_pod_ip(cluster: Cluster) -> str | None:
    pods = [p for p in cluster.pods() if p["metadata"]["labels"].get(catalog.APP_LABEL) == "redis"]
    return pods[0]["status"].get("podIP") if pods else None


def _cluster_of_node(cluster: Cluster, node_name: str) -> str | None:
    return cluster.nodes()[node_name]["metadata"]["labels"].get(catalog.CLUSTER_LABEL)


def test_the_scheduler_put_every_pod_in_its_home_cluster(deployment: Deployment) -> None:
    seen: dict[str, set[str]] = {}
    for name, c in deployment.clusters.items():
        pods = c.pods()
        assert pods, f"no pods in {name}"
        for pod in pods:
            app = pod["metadata"]["labels"].get(catalog.APP_LABEL)
            node = pod["spec"].get("nodeName")
            assert node, f"{name}: pod {pod['metadata']['name']} was not scheduled"
            assert pod["status"]["phase"] == "Running", (name, pod["metadata"]["name"], pod["status"])
            seen.setdefault(app, set()).add(name)
            if app in APPS:
                assert _cluster_of_node(c, node) == APPS[app].home, (name, pod["metadata"]["name"], node)
    for svc in catalog.SERVICES.values():
        assert seen.get(svc.name) == {svc.home}, (svc.name, seen.get(svc.name))
    assert seen.get("redis") == {"ctx1", "ctx2"}, "Redis must run in both clusters"


def test_a_second_up_changes_nothing(deployment: Deployment) -> None:
    for stack in catalog.CLUSTERS:
        deployment.ws.run("preview", "--stack", stack, "--expect-no-changes", label=f"preview-{stack}-no-changes")


def test_a_lesson_toggle_changes_istio_objects_only(deployment: Deployment) -> None:
    ws = deployment.ws
    ws.run("config", "set", "theater-msa:faults", '{"movie-service":{"delay":"3s","percent":50}}', "--stack", "ctx2")
    try:
        preview = ws.preview_json("ctx2")
    finally:
        ws.run("config", "rm", "theater-msa:faults", "--stack", "ctx2")
    changed = [s for s in preview["steps"] if s["op"] not in ("same", "read")]
    assert changed, "turning on a fault changed nothing"
    types = {s["urn"].split("::")[2].split("$")[-1] for s in changed}  # the type after its parents' types
    assert all(t.startswith(("kubernetes:networking.istio.io", "kubernetes:security.istio.io")) for t in types), types


def test_a_version_lesson_set_on_one_stack_only_is_refused_with_the_commands(deployment: Deployment) -> None:
    """v2Cluster and canary on ctx1 alone would leave ctx2's east-west gateway
    without the v1 subset: the preflight stops before anything changes."""
    from tests.e2e.stack import PulumiFailed

    ws = deployment.ws
    ws.run("config", "set", "theater-msa:v2Cluster", "ctx1", "--stack", "ctx1")
    ws.run("config", "set", "theater-msa:canary", '{"v1":80,"v2":20}', "--stack", "ctx1")
    try:
        with pytest.raises(PulumiFailed) as refused:
            ws.run("preview", "--stack", "ctx1", label="preview-ctx1-lesson-on-one-stack")
    finally:
        ws.run("config", "rm", "theater-msa:v2Cluster", "--stack", "ctx1")
        ws.run("config", "rm", "theater-msa:canary", "--stack", "ctx1")
    output = refused.value.result.stdout + refused.value.result.stderr
    assert "pulumi config set theater-msa:v2Cluster ctx1 --stack ctx2" in output, output[-3000:]
    assert """pulumi config set theater-msa:canary '{"v1":80,"v2":20}' --stack ctx2""" in output, output[-3000:]
    ws.run("preview", "--stack", "ctx1", "--expect-no-changes", label="preview-ctx1-lesson-removed")


# The canary, A/B and failover lessons at once (one `pulumi up` on, one off):
# v2 in ctx1 (v1 stays in ctx2), 80/20 weights, a header to v2, movie-service in both clusters.
LESSONS_ON = {
    "v2Cluster": "ctx1",
    "canary": '{"v1":80,"v2":20}',
    "abTest": '{"header":"x-theater-group","value":"beta"}',
    "failover": "true",
}
# Kinds a lesson may touch: Istio objects, and the workloads it adds in ctx1 (the
# v2 Deployment, movie-service's failover copy and the account both run as).
LESSON_TYPES = ("kubernetes:networking.istio.io", "kubernetes:security.istio.io", "kubernetes:apps/v1:Deployment",
                "kubernetes:policy/v1:PodDisruptionBudget",
                "kubernetes:core/v1:ServiceAccount", "theater-msa:index:SecondVersion", "theater-msa:index:AppServiceAccount")


def _istio_specs(cluster: Cluster) -> dict[tuple[str, str], dict]:
    out = {}
    for group, plural in (("networking.istio.io", "destinationrules"), ("networking.istio.io", "virtualservices")):
        for ns in (NS, ISTIO_NS):
            for obj in cluster.items(f"/apis/{group}/v1beta1/namespaces/{ns}/{plural}"):
                out[(plural, f"{ns}/{obj['metadata']['name']}")] = obj["spec"]
    return out


def _app_pods(cluster: Cluster) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in cluster.pods() if p["metadata"]["labels"].get(catalog.APP_LABEL) in APPS}


def test_the_version_lessons_put_v2_where_the_setting_says_and_leave_nothing_behind(deployment: Deployment) -> None:
    ws, c1, c2 = deployment.ws, deployment.clusters["ctx1"], deployment.clusters["ctx2"]
    before = {name: _istio_specs(c) for name, c in deployment.clusters.items()}
    deployments_before = {d["metadata"]["name"] for d in c1.items(f"/apis/apps/v1/namespaces/{NS}/deployments")}
    for stack in catalog.CLUSTERS:
        for key, value in LESSONS_ON.items():
            ws.run("config", "set", f"theater-msa:{key}", value, "--stack", stack)
    try:
        preview = ws.preview_json("ctx1")
        changed = [s for s in preview["steps"] if s["op"] not in ("same", "read")]
        types = {s["urn"].split("::")[2].split("$")[-1] for s in changed}
        assert types and all(t.startswith(LESSON_TYPES) for t in types), types
        created = {s["urn"].split("::")[-1] for s in changed if s["op"] == "create"}
        assert {"movie-service-v2", "movie-service"} <= created, created
        assert not [s for s in changed if s["op"] in ("delete", "replace", "create-replacement")], changed

        started = time.monotonic()
        ws.up("ctx1")
        record_timing("up-ctx1-version-lessons", time.monotonic() - started, note="v2Cluster+canary+abTest+failover on")
        nodes = c1.nodes()

        def v2_pods() -> list[dict]:
            return [p for p in c1.pods() if p["metadata"]["labels"].get(catalog.VERSION_LABEL) == "v2"
                    and p["status"].get("phase") == "Running"]

        pods = wait_for(lambda: len(v2_pods()) == 2 and v2_pods(), 60, "two Running v2 pods in ctx1")
        for pod in pods:
            assert pod["metadata"]["labels"][catalog.APP_LABEL] == "movie-service"
            node = pod["spec"]["nodeName"]
            assert nodes[node]["metadata"]["labels"][catalog.CLUSTER_LABEL] == "ctx1", (pod["metadata"]["name"], node)
        assert not [p for p in c2.pods() if p["metadata"]["labels"].get(catalog.VERSION_LABEL) == "v2"]
        # Away from its home, v2 reads the home's Redis (ctx2's Service, declared in ctx1 too), so
        # v1 and v2 see the same movies; ctx1's own apps keep ctx1's Redis.
        for name in ("movie-service-v2", "user-service"):
            dep = c1.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}").json()
            env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
            home = catalog.SERVICES[dep["metadata"]["labels"][catalog.APP_LABEL]].home
            assert env["REDIS_URL"] == catalog.REDIS.cluster_url(home), (name, env["REDIS_URL"])
        # failover: v1 now runs in ctx1 too, on ctx1's nodes.
        v1_ctx1 = wait_for(lambda: [p for p in c1.pods() if p["metadata"]["labels"].get(catalog.APP_LABEL) == "movie-service"
                                    and p["metadata"]["labels"].get(catalog.VERSION_LABEL) == "v1"], 60, "movie-service v1 in ctx1")
        assert all(nodes[p["spec"]["nodeName"]]["metadata"]["labels"][catalog.CLUSTER_LABEL] == "ctx1" for p in v1_ctx1)
        dr = c1.get(f"/apis/networking.istio.io/v1beta1/namespaces/{NS}/destinationrules/movie-service-dr").json()["spec"]
        assert [s["name"] for s in dr["subsets"]] == ["v1", "v2"]
        assert dr["trafficPolicy"]["loadBalancer"]["localityLbSetting"]["enabled"] is True
    finally:
        for stack in catalog.CLUSTERS:
            for key in LESSONS_ON:
                ws.run("config", "rm", f"theater-msa:{key}", "--stack", stack)
    started = time.monotonic()
    ws.up("ctx1")
    record_timing("up-ctx1-version-lessons-off", time.monotonic() - started)
    deployments = {d["metadata"]["name"] for d in c1.items(f"/apis/apps/v1/namespaces/{NS}/deployments")}
    assert deployments == deployments_before, deployments
    wait_for(lambda: not [p for p in _app_pods(c1).values() if p["metadata"]["labels"][catalog.APP_LABEL] == "movie-service"],
             60, "movie-service pods gone from ctx1")
    assert not c1.exists(f"/api/v1/namespaces/{NS}/serviceaccounts/movie-service")
    assert {name: _istio_specs(c) for name, c in deployment.clusters.items()} == before
    ws.run("preview", "--stack", "ctx1", "--expect-no-changes", label="preview-ctx1-lessons-off")


def _service_account_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig with a token of the ServiceAccount: what the pod's own mount would hold."""
    r = cluster.http.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
                          json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                "spec": {"expirationSeconds": 3600}})
    r.raise_for_status()
    ca = base64.b64encode(cluster.plane.pki.ca_crt.read_bytes()).decode()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster.name,
        "clusters": [{"name": cluster.name, "cluster": {"server": cluster.plane.server,
                                                       "certificate-authority-data": ca}}],
        "users": [{"name": account, "user": {"token": r.json()["status"]["token"]}}],
        "contexts": [{"name": cluster.name, "context": {"cluster": cluster.name, "user": account}}],
    }))
    return path


def test_status_panel_shows_both_clusters_through_the_access_the_stacks_made(
        deployment: Deployment, tmp_path: Path, artifacts: Path) -> None:
    c1, c2 = deployment.clusters["ctx1"], deployment.clusters["ctx2"]
    gateway_sa = catalog.GATEWAY.name
    local = _service_account_kubeconfig(c1, NS, gateway_sa, tmp_path / "ctx1-gateway.kubeconfig")
    remote = tmp_path / "ctx2-dashboard.kubeconfig"
    remote.write_text(deployment.ws.output("ctx2", "dashboardKubeconfig"))
    settings = replace(Settings.from_env(catalog.GATEWAY.name), cluster="ctx1", local_kubeconfig=local,
                       remote_kubeconfig=remote, status_cache_seconds=0.0, k8s_timeout=5.0)
    with LiveServer(create_app(settings)) as gw:
        status = httpx.get(gw.url + "/api/status", timeout=20).json()
        by_name = {c["name"]: c for c in status["clusters"]}
        for name, cluster in (("ctx1", c1), ("ctx2", c2)):
            got = by_name[name]
            assert got["reachable"], (name, got["error"], got["forbidden"])
            assert not got["forbidden"], got["forbidden"]
            assert {n["name"] for n in got["nodes"]} == set(cluster.nodes()), name
            assert {p["name"] for p in got["pods"]} == {p["metadata"]["name"] for p in cluster.pods()}, name
            assert all(p["phase"] == "Running" for p in got["pods"])
        _screenshot_status(gw.url, artifacts / "status-panel-two-clusters.png")


def _screenshot_status(url: str, path: Path) -> None:
    from tests.gateway.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium

    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        panel = page.get_by_test_id("status-clusters")
        panel.get_by_text("ctx2-node-1").first.wait_for(timeout=15000)
        page.get_by_test_id("status-panel").screenshot(path=str(path))
        browser.close()
    assert path.stat().st_size > 1000


def _istio_uids(cluster: Cluster) -> dict[str, str]:
    """kind/namespace/name -> metadata.uid of every Istio object we declare (read at v1beta1)."""
    out = {}
    for group, plural in (("networking.istio.io", "virtualservices"), ("networking.istio.io", "destinationrules"),
                          ("security.istio.io", "peerauthentications"), ("security.istio.io", "authorizationpolicies")):
        for ns in (NS, ISTIO_NS):
            for obj in cluster.items(f"/apis/{group}/v1beta1/namespaces/{ns}/{plural}"):
                out[f"{plural}/{ns}/{obj['metadata']['name']}"] = obj["metadata"]["uid"]
    return out


def test_switching_the_istio_api_version_keeps_every_istio_object(deployment: Deployment) -> None:
    """istioApiVersion v1beta1 -> v1 -> v1beta1 on the deployed stacks (Istio
    current serves both): each `pulumi up` updates the objects in place, and
    every Istio object is still there afterwards. Without the aliases Pulumi
    created the "new" resources and deleted the "old" ones: the same objects."""
    ws = deployment.ws
    before = {name: c.istio_objects(NS) + c.istio_objects(ISTIO_NS) for name, c in deployment.clusters.items()}
    assert all(before.values())
    uids = {name: _istio_uids(c) for name, c in deployment.clusters.items()}
    for version in ("v1", "v1beta1"):
        for stack in catalog.CLUSTERS:
            ws.run("config", "set", "theater-msa:istioApiVersion", version, "--stack", stack)
            preview = ws.preview_json(stack)
            changed = [s for s in preview["steps"] if s["op"] not in ("same", "read")]
            assert changed, (stack, version)
            assert all(s["op"] == "update" for s in changed), [(s["op"], s["urn"]) for s in changed]
            started = time.monotonic()
            ws.up(stack)
            record_timing(f"up-{stack}-istio-{version}", time.monotonic() - started)
        after = {name: c.istio_objects(NS) + c.istio_objects(ISTIO_NS) for name, c in deployment.clusters.items()}
        assert after == before, version
        # The same objects, never deleted and made again.
        assert {name: _istio_uids(c) for name, c in deployment.clusters.items()} == uids, version
        vs = deployment.clusters["ctx1"].get(f"/apis/networking.istio.io/{version}/namespaces/{ISTIO_NS}/virtualservices/{NS}")
        assert vs.status_code == 200
    ws.run("config", "rm", "theater-msa:istioApiVersion", "--stack", "ctx1")
    ws.run("config", "rm", "theater-msa:istioApiVersion", "--stack", "ctx2")
    for stack in catalog.CLUSTERS:
        ws.run("preview", "--stack", stack, "--expect-no-changes", label=f"preview-{stack}-istio-version-back")


def test_destroy_leaves_nothing_of_ours(deployment: Deployment) -> None:
    ws = deployment.ws
    for stack in ("ctx1", "ctx2"):
        started = time.monotonic()
        ws.run("destroy", "--stack", stack, "--yes", label=f"destroy-{stack}")
        record_timing(f"destroy-{stack}", time.monotonic() - started)
    for name, c in deployment.clusters.items():
        wait_for(lambda c=c: not c.exists(f"/api/v1/namespaces/{NS}"), 120, f"{name}: namespace {NS} deleted")
        ours = [o for o in c.istio_objects(ISTIO_NS) if o[0] == "VirtualService"]
        assert ours == [], (name, ours)
        for kind in ("clusterroles", "clusterrolebindings"):
            leftovers = [i["metadata"]["name"] for i in c.items(f"/apis/rbac.authorization.k8s.io/v1/{kind}")
                         if "theater" in i["metadata"]["name"]
                         or (i["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") == "theater-msa"]
            assert leftovers == [], (name, kind, leftovers)
