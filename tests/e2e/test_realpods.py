"""Real pods (issue 22): `theater sim up` with a real node per cluster
(containerd, kubelet, kube-proxy, CoreDNS: sim/node.py) and the sim's TLS
registry; the service images built from services/Dockerfile and pushed as
infra/images.py declares them (sim/images.py); `pulumi up --stack ctx2` and
`--stack ctx1` with the real CLI and provider, whose own readiness wait now
sees real containers.

The test stacks place a whole flow in one cluster (placement: every service
in the stack's own cluster): a call from ctx1 to a service in ctx2 needs the
mesh's east-west gateway, and nothing here runs Envoy. One replica each, a
Redis PersistentVolumeClaim on the sim's `local` StorageClass.

The tests of this module run in order on one deployment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra.image_plan import image_builds
from services import catalog
from sim import images, simulation
from sim.objects import STORAGE_CLASS
from tests.e2e.clusters import NS, Cluster, running_sim, wait_for
from tests.e2e.pods import pod_exec, pod_logs, python_in
from tests.e2e.stack import Workspace, record_timing

APPS = list(catalog.SERVICES)
TAG = catalog.DEFAULT_VERSION
GATEWAY = catalog.GATEWAY.name
APP_UID = 10001


def say(message: str) -> None:
    print(f"[e2e realpods] {message}", flush=True)


@dataclass
class RealDeployment:
    sim: simulation.Simulation
    # One project copy per stack, on one file backend: this test places a whole
    # flow in each cluster, two placements that a real mesh must not have (the
    # preflight refuses stack files that disagree on placement when both are in
    # one project; lesson_sync).
    workspaces: dict[str, Workspace]
    clusters: dict[str, Cluster]
    digests: dict[str, str] = field(default_factory=dict)  # "<service>:<tag>" -> sha256:...
    engine: images.DockerEngine | None = None

    def plane(self, cluster: str):  # noqa: ANN201
        return self.sim.planes[cluster]

    def app_pods(self, cluster: str, app: str | None = None) -> list[dict]:
        pods = [p for p in self.clusters[cluster].pods() if not p["metadata"].get("deletionTimestamp")]
        return [p for p in pods if app is None or p["metadata"]["labels"].get(catalog.APP_LABEL) == app]

    def pod(self, cluster: str, app: str) -> str:
        ready = [p for p in self.app_pods(cluster, app) if _ready(p)]
        assert len(ready) == 1, (cluster, app, [p["metadata"]["name"] for p in self.app_pods(cluster, app)])
        return ready[0]["metadata"]["name"]


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def stack_settings(sim: simulation.Simulation, cluster: str, digests: dict[str, str]) -> dict[str, str]:
    reg = sim.registry
    return {
        "domain": "sim.example", "kubeContext": cluster,
        "buildImages": "false", "imageTag": TAG, "registry": reg.address, "harborProject": reg.project,
        # As `theater images push` prints them: the Deployments pull <repo>:<tag>@<digest>.
        "imageDigests": json.dumps({app: digests[f"{app}:{TAG}"] for app in APPS}),
        "harborUsername": reg.admin.username, "pullUsername": reg.robot.username,
        "replicas": "1",
        "placement": json.dumps({service: cluster for service in APPS}),
        "redisStorageClass": STORAGE_CLASS, "redisImage": redis_image(sim),
        # What the other cluster's pods dial for this cluster's API (the relay in their node's namespace).
        "dashboardApiServer": sim.in_cluster_api(cluster),
        # "auto" exports only where api-gateway does not run; here it runs in both, and ctx1's reads ctx2.
        "exportDashboardAccess": "true" if cluster == "ctx2" else "auto",
    }


def redis_image(sim: simulation.Simulation) -> str:
    return images.redis_reference(sim.registry)


def build_and_push(engine: images.DockerEngine, sim: simulation.Simulation) -> dict[str, str]:
    """The four services as infra/images.py declares them, and the Redis stand-in; returns the digests."""
    started = time.monotonic()
    images.StandIns(engine, say).ensure()
    record_timing("realpods-stand-ins", time.monotonic() - started)
    started = time.monotonic()
    tags = images.build_images(engine, image_builds(APPS, [], TAG, catalog.MOVIE_V2.version),
                               sim.registry.repository, say)
    pushed = images.push_images(engine, tags, sim.registry, say) + [images.push_redis(engine, sim.registry, say)]
    record_timing("realpods-build-push", time.monotonic() - started, f"{len(pushed)} images")
    return {p.reference.rpartition("/")[2]: p.digest for p in pushed}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, artifacts: Path,
               pulumi_version: str) -> Iterator[RealDeployment]:
    suite_started = time.monotonic()
    with running_sim(tmp_path_factory.mktemp("sim"), istio="current", real_nodes=1) as sim:
        engine = images.DockerEngine()
        engine.ensure(say)
        digests = build_and_push(engine, sim)
        state = tmp_path_factory.mktemp("pulumi-state")
        workspaces = {}
        for cluster in catalog.CLUSTERS:
            ws = workspaces[cluster] = Workspace.create(tmp_path_factory.mktemp(f"pulumi-{cluster}"), sim.kubeconfig,
                                                        artifacts / "realpods", state=state)
            for other in catalog.CLUSTERS:  # this copy holds one stack only
                if other != cluster:
                    (ws.project / f"Pulumi.{other}.yaml").unlink()
            ws.init_stack(cluster, stack_settings(sim, cluster, digests),
                          {"harborPassword": sim.registry.admin.password, "pullPassword": sim.registry.robot.password})
        # ctx2 first, so ctx1's gateway can read ctx2's dashboard kubeconfig (remoteStatusStack) in one up.
        workspaces["ctx1"].run("config", "set", "theater-msa:remoteStatusStack", "organization/theater-msa/ctx2",
                               "--stack", "ctx1")
        d = RealDeployment(sim, workspaces, {name: Cluster(plane) for name, plane in sim.planes.items()}, digests, engine)
        for stack in ("ctx2", "ctx1"):
            started = time.monotonic()
            workspaces[stack].up(stack)
            record_timing(f"realpods-up-{stack}", time.monotonic() - started,
                          note="first pulumi up with real pods (provider waits for Ready)")
        yield d
        for c in d.clusters.values():
            c.close()
        # The tags made for this registry (127.0.0.1:<port>/...); the images stay under their other tags.
        images.untag(engine, [f"{sim.registry.repository(app)}:{TAG}" for app in APPS]
                     + [redis_image(sim)])
    record_timing("realpods-module", time.monotonic() - suite_started, note="sim up + build/push + ups + checks")


def test_every_pod_runs_on_the_real_node_and_is_ready(deployment: RealDeployment) -> None:
    report = simulation.status(deployment.sim.directory)  # `theater sim status`
    for cluster in catalog.CLUSTERS:
        shown = report["clusters"][cluster]["real_node"]
        assert shown["name"] == f"{cluster}-real-1" and shown["ready"] is True, shown
        assert {"containerd", "kubelet", "kube-proxy", "coredns"} <= set(shown["processes"]), shown
        labels = deployment.clusters[cluster].nodes()[shown["name"]]["metadata"]["labels"]
        assert labels[catalog.CLUSTER_LABEL] == cluster, labels  # like the kwok nodes
    for cluster in catalog.CLUSTERS:
        node = deployment.sim.nodes[cluster]
        pods = deployment.app_pods(cluster)
        apps = sorted(p["metadata"]["labels"][catalog.APP_LABEL] for p in pods)
        assert apps == sorted([*APPS, "redis"]), (cluster, apps)
        for pod in pods:
            name = pod["metadata"]["name"]
            assert pod["spec"]["nodeName"] == node.name, (cluster, name, pod["spec"].get("nodeName"))
            assert _ready(pod), (cluster, name, pod["status"])
            statuses = pod["status"]["containerStatuses"]
            assert all(s["ready"] and "running" in s["state"] and s["imageID"] for s in statuses), statuses
            # Pulled from the sim's registry with the robot account (the stack's registry-pull Secret).
            assert all(s["imageID"].startswith(deployment.sim.registry.address) for s in statuses), statuses
            app = pod["metadata"]["labels"][catalog.APP_LABEL]
            key = f"{app}:{TAG}" if app != "redis" else redis_image(deployment.sim).rpartition("/")[2]
            assert statuses[0]["imageID"].endswith(deployment.digests[key]), (statuses[0]["imageID"], key)
            if app != "redis":  # referenced by digest (imageDigests), the tag kept for people
                image = pod["spec"]["containers"][0]["image"]
                assert image == f"{deployment.sim.registry.repository(app)}:{TAG}@{deployment.digests[key]}", image
            created = _time(pod["metadata"]["creationTimestamp"])
            ready_at = next(_time(c["lastTransitionTime"]) for c in pod["status"]["conditions"] if c["type"] == "Ready")
            record_timing(f"realpods-pod-start-{cluster}-{app}", ready_at - created, note="created -> Ready")
        assert pod["spec"].get("imagePullSecrets") == [{"name": "registry-pull"}], pod["spec"].get("imagePullSecrets")


def _time(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_the_restricted_pod_spec_is_enforced_in_the_containers(deployment: RealDeployment) -> None:
    plane = deployment.plane("ctx1")
    for app in APPS:
        pod = deployment.pod("ctx1", app)
        status = pod_exec(plane, NS, pod, ["cat", "/proc/1/status"]).check()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["Uid"].split() == [str(APP_UID)] * 4, (app, fields["Uid"])
        assert fields["CapEff"].strip() == "0000000000000000", (app, fields["CapEff"])
        assert fields["CapBnd"].strip() == "0000000000000000", (app, fields["CapBnd"])
        assert fields["NoNewPrivs"].strip() == "1", (app, fields["NoNewPrivs"])
        assert fields["Seccomp"].strip() == "2", (app, fields["Seccomp"])  # RuntimeDefault: filter mode
        root = pod_exec(plane, NS, pod, ["touch", "/app-was-writable"])
        assert root.code != 0 and "Read-only file system" in root.stderr, (app, root)
        tmp = pod_exec(plane, NS, pod, ["touch", "/tmp/writable"])
        assert tmp.code == 0, (app, tmp)  # the emptyDir


def _http(plane, pod: str, method: str, path: str, body: dict | None = None) -> tuple[int, object]:  # noqa: ANN001
    code = (
        "import json, sys, urllib.request, urllib.error\n"
        f"req = urllib.request.Request('http://127.0.0.1:{catalog.GATEWAY.port}{path}', method='{method}',"
        f" data={json.dumps(body).encode() if body is not None else None!r},"
        " headers={'content-type': 'application/json'})\n"
        "try:\n    r = urllib.request.urlopen(req, timeout=20); status, data = r.status, r.read()\n"
        "except urllib.error.HTTPError as e:\n    status, data = e.code, e.read()\n"
        "print(json.dumps({'status': status, 'body': data.decode()}))\n"
    )
    out = json.loads(python_in(plane, NS, pod, code).check())
    try:
        return out["status"], json.loads(out["body"])
    except ValueError:
        return out["status"], out["body"]


def test_the_app_flow_through_the_gateway_pod_in_each_cluster(deployment: RealDeployment) -> None:
    for cluster in catalog.CLUSTERS:
        plane = deployment.plane(cluster)
        gateway = deployment.pod(cluster, GATEWAY)
        status, user = _http(plane, gateway, "POST", "/users", {"name": f"Kim {cluster}", "email": f"kim@{cluster}.example"})
        assert status == 201, (cluster, status, user)
        status, movie = _http(plane, gateway, "POST", "/movies",
                              {"title": f"Parasite {cluster}", "genre": "drama", "year": 2019, "capacity": 50})
        assert status == 201, (cluster, status, movie)
        status, movies = _http(plane, gateway, "GET", "/movies")
        assert status == 200, (cluster, status, movies)
        items = movies["items"] if isinstance(movies, dict) and "items" in movies else movies
        assert any(m["id"] == movie["id"] for m in items), (cluster, movies)
        status, booking = _http(plane, gateway, "POST", "/bookings", {"userId": user["id"], "movieId": movie["id"], "seats": 2})
        assert status == 201, (cluster, status, booking)


def test_api_status_from_inside_the_gateway_pod_reads_both_clusters(deployment: RealDeployment) -> None:
    """Its own cluster through the pod's ServiceAccount (in-cluster), the other through
    the dashboard kubeconfig ctx2's stack exported (remoteStatusStack)."""
    plane = deployment.plane("ctx1")
    status, body = _http(plane, deployment.pod("ctx1", GATEWAY), "GET", "/api/status")
    assert status == 200, body
    text = json.dumps(body)
    assert "config_error" not in text and "no attribute" not in text, text[:2000]
    assert body["mode"] == "kubernetes", text[:1000]
    clusters = {c["name"]: c for c in body["clusters"]}
    assert set(clusters) == {"ctx1", "ctx2"}, text[:2000]
    assert clusters["ctx1"]["source"] == "in-cluster", clusters["ctx1"]
    assert clusters["ctx2"]["server"] == deployment.sim.in_cluster_api("ctx2"), clusters["ctx2"]
    for name, entry in clusters.items():
        assert entry["reachable"] is True and entry["error"] is None, (name, json.dumps(entry)[:1500])
        listed = json.dumps(entry["pods"])
        for pod in deployment.app_pods(name):
            assert pod["metadata"]["name"] in listed, (name, pod["metadata"]["name"], listed[:1500])


def test_logs_and_exec_go_through_the_kubelet(deployment: RealDeployment) -> None:
    plane = deployment.plane("ctx2")
    pod = deployment.pod("ctx2", catalog.MOVIE.name)
    logs = pod_logs(plane, NS, pod)
    assert logs.strip(), "the container wrote no log"
    assert pod_exec(plane, NS, pod, ["sh", "-c", "echo out; echo err >&2; exit 7"]).__dict__ == {
        "code": 7, "stdout": "out\n", "stderr": "err\n"}
    # Output larger than one WebSocket frame arrives whole (the frames come in pieces).
    big = pod_exec(plane, NS, pod, ["python", "-c", "print('x' * 300000)"]).check()
    assert big == "x" * 300000 + "\n", len(big)


def test_pod_traffic_stays_in_the_sims_namespaces(deployment: RealDeployment) -> None:
    """No default route in a pod; the host's own address, the node link's host end
    and the outside are unreachable; Services and the API addresses are reached."""
    sim = deployment.sim
    node = sim.nodes["ctx1"]
    plane = deployment.plane("ctx1")
    pod = deployment.pod("ctx1", catalog.USER.name)
    routes = pod_exec(plane, NS, pod, ["cat", "/proc/net/route"]).check().splitlines()[1:]
    assert routes and all(line.split()[1] != "00000000" for line in routes), routes  # no default route
    probe = (
        "import socket, json\nout = {}\n"
        f"for host, port in {[('8.8.8.8', 53), (node.host_ip, 22), ('192.0.2.2', 22), ('127.0.0.53', 53)]!r}:\n"
        "    try:\n        socket.create_connection((host, port), timeout=3).close(); out[host] = 'connected'\n"
        "    except OSError as e:\n        out[host] = e.__class__.__name__ + ' ' + str(e.errno)\n"
        "print(json.dumps(out))\n"
    )
    reached = json.loads(python_in(plane, NS, pod, probe).check())
    assert reached["8.8.8.8"].endswith(" 101"), reached  # ENETUNREACH: no route out of the pod
    assert reached[node.host_ip].endswith(" 101"), reached
    assert reached["192.0.2.2"].endswith(" 101"), reached
    assert reached["127.0.0.53"] != "connected", reached
    # ...while the other cluster's API server is reachable at its in-node address (the relay).
    other = sim.in_cluster_api("ctx2").removeprefix("https://").rpartition(":")[0]
    reach_api = f"import socket; socket.create_connection(('{other}', 443), timeout=5).close(); print('ok')"
    assert python_in(plane, NS, pod, reach_api).check().strip() == "ok"


def test_redis_data_survives_deleting_its_pod(deployment: RealDeployment) -> None:
    cluster = "ctx1"
    c = deployment.clusters[cluster]
    plane = deployment.plane(cluster)
    claim = c.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/redis-data").json()
    assert claim["status"]["phase"] == "Bound", claim["status"]
    volume = c.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}").json()
    assert volume["spec"]["local"]["path"].startswith(str(deployment.sim.nodes[cluster].volumes)), volume["spec"]
    gateway = deployment.pod(cluster, GATEWAY)
    status, movie = _http(plane, gateway, "POST", "/movies",
                          {"title": "Survivor", "genre": "drama", "year": 2020, "capacity": 10})
    assert status == 201, movie
    time.sleep(1.5)  # appendfsync everysec
    old = deployment.pod(cluster, "redis")
    with plane.client() as client:
        assert client.delete(f"/api/v1/namespaces/{NS}/pods/{old}").status_code == 200
    started = time.monotonic()
    wait_for(lambda: [p for p in deployment.app_pods(cluster, "redis") if p["metadata"]["name"] != old and _ready(p)],
             120, "a new Ready Redis pod")
    record_timing("realpods-redis-replaced", time.monotonic() - started, note="pod deleted -> new pod Ready")
    status, got = wait_for(lambda: (r := _http(plane, gateway, "GET", f"/movies/{movie['id']}"))[0] == 200 and r,
                           60, "the movie back through the gateway")
    assert got["title"] == "Survivor", got


def test_a_changed_image_rolls_the_pods_to_the_new_digest(deployment: RealDeployment) -> None:
    """A fixed image pushed again under the same tag, as an instructor does
    on the day: the new digests (imageDigests) roll the pods; a tag alone
    would leave every node on the image it already has."""
    sim, engine = deployment.sim, deployment.engine
    tags = {}
    for app in APPS:
        repo = sim.registry.repository(app)
        build = engine.docker("build", "--network", "host", "--pull=false", "-t", f"{repo}:{TAG}", "-",
                              input=f"FROM {repo}:{TAG}\nLABEL theater.test/rollout={time.time()}\n")
        assert build.returncode == 0, build.stderr
        tags[app] = f"{repo}:{TAG}"
    new = {p.key: p.digest for p in images.push_images(engine, tags, sim.registry, say)}
    old_pods = {p["metadata"]["name"] for p in deployment.app_pods("ctx1")}
    deployment.workspaces["ctx1"].run("config", "set", "theater-msa:imageDigests", json.dumps(new), "--stack", "ctx1")
    started = time.monotonic()
    deployment.workspaces["ctx1"].up("ctx1")
    record_timing("realpods-up-ctx1-rollout", time.monotonic() - started, note="new image digest: rolling update")
    for app in APPS:
        pods = deployment.app_pods("ctx1", app)
        assert [p["metadata"]["name"] for p in pods if p["metadata"]["name"] in old_pods] == [], (app, "old pod left")
        (pod,) = pods
        assert _ready(pod), pod["status"]
        assert pod["status"]["containerStatuses"][0]["imageID"].endswith(new[app]), (app, pod["status"])
        assert new[app] != deployment.digests[f"{app}:{TAG}"]


def test_destroy_leaves_nothing_running(deployment: RealDeployment) -> None:
    for stack in ("ctx1", "ctx2"):
        started = time.monotonic()
        deployment.workspaces[stack].run("destroy", "--stack", stack, "--yes", label=f"destroy-{stack}")
        record_timing(f"realpods-destroy-{stack}", time.monotonic() - started)
    for cluster in catalog.CLUSTERS:
        c = deployment.clusters[cluster]
        wait_for(lambda: not c.pods(), 120, f"no pods left in {cluster}/{NS}")
        node = deployment.sim.nodes[cluster]

        def containers() -> list[str]:
            with deployment.plane(cluster).client() as client:
                node_pods = client.get("/api/v1/pods", params={"fieldSelector": f"spec.nodeName={node.name}"}).json()
            return [p["metadata"]["name"] for p in node_pods["items"]]

        wait_for(lambda: not containers(), 60, f"no pods on {node.name}")
        # ...and nothing of them left in containerd: the sandboxes are gone too.
        import subprocess

        def sandboxes() -> str:
            out = subprocess.run(["ctr", "-a", str(node.directory / "containerd/containerd.sock"), "-n", "k8s.io",
                                  "tasks", "ls", "-q"], capture_output=True, text=True)
            return out.stdout.strip()

        wait_for(lambda: sandboxes() == "", 90, f"no containers running in {node.name}'s containerd")
