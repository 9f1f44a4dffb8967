"""The deployment where a first real `pulumi up` goes wrong in class:
an Istio older than 1.22, a namespace made by hand before the first up, a
slow token controller, and nodes without the cluster-name label (a warning:
the pods run anyway)."""

from __future__ import annotations

import base64
import os
import signal
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from services import catalog
from tests.e2e.clusters import NS, Cluster, running_sim, wait_for
from tests.e2e.stack import PulumiFailed, Workspace, record_timing
from tests.e2e.test_deploy import ISTIO_NS, stack_settings

# The longest the test keeps ctx2's kube-controller-manager stopped (see below).
PAUSE_LIMIT = 30.0


def test_old_istio_with_a_namespace_made_by_hand_and_a_slow_token_controller(
        tmp_path_factory: pytest.TempPathFactory, artifacts: Path, pulumi_version: str) -> None:
    """Istio 1.20 serves VirtualService, DestinationRule and PeerAuthentication
    only as v1beta1 (v1alpha3); a namespace theater-msa exists before the first
    up (kubectl create namespace, as the seed guide did); ctx2's
    kube-controller-manager, which fills the dashboard token Secret, is stopped
    from the start of `pulumi up --stack ctx2` until 3 s after that Secret
    exists (at most PAUSE_LIMIT)."""
    with running_sim(tmp_path_factory.mktemp("sim"), istio="1.20.0") as sim:
        clusters = {name: Cluster(plane) for name, plane in sim.planes.items()}
        for c in clusters.values():
            r = c.http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": NS}})
            assert r.status_code == 201, r.text
        ws = Workspace.create(tmp_path_factory.mktemp("pulumi"), sim.kubeconfig, artifacts / "istio-1.20")
        for cluster in catalog.CLUSTERS:
            ws.init_stack(cluster, stack_settings(sim, cluster), {"harborPassword": "not-used"})

        # istioApiVersion=v1 on Istio 1.20: stopped before anything is declared, with the fix.
        ws.run("config", "set", "theater-msa:istioApiVersion", "v1", "--stack", "ctx1")
        with pytest.raises(PulumiFailed) as refused:
            ws.run("preview", "--stack", "ctx1", label="preview-ctx1-istio-v1")
        output = refused.value.result.stdout + refused.value.result.stderr
        assert "networking.istio.io/v1 VirtualService" in output, output[-3000:]
        assert "pulumi config set theater-msa:istioApiVersion v1beta1 --stack ctx1" in output, output[-3000:]
        ws.run("config", "set", "theater-msa:istioApiVersion", "v1beta1", "--stack", "ctx1")

        started = time.monotonic()
        ws.up("ctx1")
        record_timing("up-ctx1-istio-1.20", time.monotonic() - started)

        # The token controller is slow: kube-controller-manager stays stopped from
        # the start of the up until the dashboard's token Secret exists, then 3 s more
        # (the provider waits up to about 5 s for the Secret's data). At most
        # PAUSE_LIMIT in all: the engine runs 4 steps per core at once (8 here), and
        # with the controllers stopped the Deployments and Services wait for a
        # rollout and endpoints that never come; when eight of them fill the slots
        # before the Secret's create starts, only the controllers can free them
        # (CI saw that deadlock last until the 600 s timeouts).
        kcm = sim.planes["ctx2"].pids["kube-controller-manager"]
        token_secret = f"/api/v1/namespaces/{NS}/secrets/{catalog.DASHBOARD_SERVICE_ACCOUNT}-token"
        watcher = Cluster(sim.planes["ctx2"])
        done = threading.Event()
        seen: list[float] = []

        def resume_after_the_secret() -> None:
            paused = time.monotonic()
            try:
                while not done.is_set() and time.monotonic() - paused < PAUSE_LIMIT:
                    if watcher.exists(token_secret):
                        seen.append(time.monotonic() - paused)
                        done.wait(3.0)
                        break
                    time.sleep(0.2)
            finally:
                os.kill(kcm, signal.SIGCONT)

        os.kill(kcm, signal.SIGSTOP)
        thread = threading.Thread(target=resume_after_the_secret, daemon=True)
        thread.start()
        try:
            started = time.monotonic()
            ws.up("ctx2")
            record_timing("up-ctx2-istio-1.20-slow-token-controller", time.monotonic() - started,
                          note=f"token Secret created {seen[0]:.1f} s into the pause" if seen
                          else f"the Secret's create waited behind the stopped controllers; resumed after {PAUSE_LIMIT} s")
        finally:
            done.set()
            os.kill(kcm, signal.SIGCONT)
            thread.join(10)
            watcher.close()

        for name, c in clusters.items():
            kinds = {kind for kind, _ in c.istio_objects(NS)}
            assert {"DestinationRule", "PeerAuthentication", "AuthorizationPolicy"} <= kinds, (name, kinds)
            ns = c.get(f"/api/v1/namespaces/{NS}").json()
            assert ns["metadata"]["labels"].get("istio-injection") == "enabled" or \
                "istio.io/rev" in ns["metadata"]["labels"], ns["metadata"]["labels"]
        assert ("VirtualService", "theater-msa") in clusters["ctx1"].istio_objects(ISTIO_NS)

        # The dashboard kubeconfig ctx2 exports carries a token that really reads ctx2.
        kubeconfig = yaml.safe_load(ws.output("ctx2", "dashboardKubeconfig"))
        user = kubeconfig["users"][0]["user"]
        cluster = kubeconfig["clusters"][0]["cluster"]
        ca = tmp_path_factory.mktemp("ca") / "ca.crt"
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        r = httpx.get(cluster["server"] + "/api/v1/nodes", verify=ssl.create_default_context(cafile=str(ca)),
                      headers={"authorization": f"Bearer {user['token']}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert {n["metadata"]["name"] for n in r.json()["items"]} == set(clusters["ctx2"].nodes())

        for stack in ("ctx1", "ctx2"):
            ws.run("destroy", "--stack", stack, "--yes", label=f"destroy-{stack}")
        for c in clusters.values():
            c.close()


def test_nodes_without_the_cluster_label(tmp_path_factory: pytest.TempPathFactory, artifacts: Path,
                                         pulumi_version: str) -> None:
    """ctx2's nodes lack cluster-name (an NKS node-pool upgrade brings up nodes
    without it): `pulumi up` warns with the command that labels them, and the
    pods run anyway, because the affinity is preferred. Before, the preflight
    stopped the up, and pods that lost their labelled nodes stayed Pending."""
    with running_sim(tmp_path_factory.mktemp("sim"), unlabelled=("ctx2",)) as sim:
        c2 = Cluster(sim.planes["ctx2"])
        ws = Workspace.create(tmp_path_factory.mktemp("pulumi"), sim.kubeconfig, artifacts / "unlabelled")
        for cluster in catalog.CLUSTERS:
            ws.init_stack(cluster, stack_settings(sim, cluster), {"harborPassword": "not-used"})
        result = ws.up("ctx2", timeout=600)
        output = result.stdout + result.stderr
        assert "kubectl --context ctx2 label nodes --all cluster-name=ctx2" in output, output[-3000:]

        def movie_pods_running() -> list[dict]:
            pods = [p for p in c2.pods() if p["metadata"]["labels"].get("app") == "movie-service"
                    and not p["metadata"].get("deletionTimestamp")]
            return pods if len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods) else []

        pods = wait_for(movie_pods_running, 60, "movie-service Running on nodes without cluster-name")
        nodes = c2.nodes()
        assert all(catalog.CLUSTER_LABEL not in nodes[p["spec"]["nodeName"]]["metadata"].get("labels", {}) for p in pods)
        # The pods are replaced (a drain, say): the new ones are scheduled too.
        r = c2.http.delete(f"/api/v1/namespaces/{NS}/pods", params={"labelSelector": "app=movie-service"})
        assert r.status_code == 200, r.text
        replaced = wait_for(lambda: [p for p in movie_pods_running() if p["metadata"]["uid"] not in
                                     {q["metadata"]["uid"] for q in pods}], 60, "replacement pods Running")
        assert len(replaced) == 2
        c2.close()
