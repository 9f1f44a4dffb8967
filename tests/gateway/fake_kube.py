"""A stand-in Kubernetes API server for the /api/status tests.

Same paths and JSON shapes as the real API (NodeList, DeploymentList,
PodList, and Status objects for errors), bearer-token auth, and switches to
play the failures the status page must explain: a resource the
ServiceAccount may not list (403, as the real RBAC authorizer words it), a
wrong token (401), or an API server too slow to answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

NS = "theater-msa"
SA_USER = f"system:serviceaccount:{NS}:api-gateway"


def ts(seconds_ago: int) -> str:
    t = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, cluster: str, ready: bool = True, control_plane: bool = False) -> dict:
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "cluster-name": cluster,
    }
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    cond = lambda t, s, reason: {  # noqa: E731
        "type": t,
        "status": s,
        "lastHeartbeatTime": ts(20),
        "lastTransitionTime": ts(3600),
        "reason": reason,
        "message": reason,
    }
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "1234",
            "creationTimestamp": ts(86400),
            "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"], "providerID": f"kind://docker/{cluster}/{name}"},
        "status": {
            "capacity": {"cpu": "8", "memory": "16318596Ki", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "16318596Ki", "pods": "110"},
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID"),
                cond("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady"),
            ],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "m",
                "systemUUID": "s",
                "bootID": "b",
                "kernelVersion": "6.1.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.18",
                "kubeletVersion": "v1.31.0",
                "kubeProxyVersion": "v1.31.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def deployment(name: str, desired: int, ready: int) -> dict:
    labels = {"app": name, "version": "v1", "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "theater-msa"}
    status: dict = {
        "observedGeneration": 1,
        "replicas": desired,
        "updatedReplicas": desired,
        "conditions": [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ok",
             "lastUpdateTime": ts(600), "lastTransitionTime": ts(600)},
        ],
    }
    if ready:  # the real API omits zero counts
        status.update(readyReplicas=ready, availableReplicas=ready)
    else:
        status["unavailableReplicas"] = desired
    return {
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": "99", "generation": 1,
                     "creationTimestamp": ts(900), "labels": labels, "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {
            "replicas": desired,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"sidecar.istio.io/inject": "true"}},
                "spec": {"serviceAccountName": name, "containers": [
                    {"name": name, "image": f"theater-msa/{name}:v1", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                     "resources": {}, "imagePullPolicy": "IfNotPresent"}]},
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": status,
    }


def pod(name: str, app: str, node_name: str, *, age: int = 300, restarts: int = 0, ready: bool = True,
        phase: str = "Running", waiting: str | None = None) -> dict:
    labels = {"app": app, "version": "v1", "pod-template-hash": "7d9f8c6b5", "security.istio.io/tlsMode": "istio"}
    app_state = {"running": {"startedAt": ts(age - 5)}} if not waiting else {"waiting": {"reason": waiting, "message": "back-off"}}
    return {
        "metadata": {"name": name, "generateName": name.rsplit("-", 1)[0] + "-", "namespace": NS, "uid": f"uid-{name}",
                     "resourceVersion": "555", "creationTimestamp": ts(age), "labels": labels,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name.rsplit("-", 1)[0],
                                          "uid": "rs", "controller": True, "blockOwnerDeletion": True}]},
        "spec": {
            "initContainers": [{"name": "istio-init", "image": "docker.io/istio/proxyv2:1.24.0"}],
            "containers": [{"name": app, "image": f"theater-msa/{app}:v1"}, {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0"}],
            "nodeName": node_name,
            "serviceAccountName": app,
            "restartPolicy": "Always",
        },
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": ts(age)},
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ts(age)},
                {"type": "ContainersReady", "status": "True" if ready else "False", "lastTransitionTime": ts(age)},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(age)},
            ],
            "hostIP": "172.18.0.3",
            "podIP": "10.244.1.7",
            "podIPs": [{"ip": "10.244.1.7"}],
            "startTime": ts(age),
            "containerStatuses": [
                {"name": app, "state": app_state, "ready": ready, "restartCount": restarts,
                 "image": f"theater-msa/{app}:v1", "imageID": "sha256:abc", "containerID": "containerd://1", "started": ready},
                {"name": "istio-proxy", "state": {"running": {"startedAt": ts(age - 3)}}, "ready": True, "restartCount": 1,
                 "image": "docker.io/istio/proxyv2:1.24.0", "imageID": "sha256:def", "containerID": "containerd://2", "started": True},
            ],
            "qosClass": "Burstable",
        },
    }


def status_error(code: int, reason: str, message: str, details: dict | None = None) -> JSONResponse:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=code)


@dataclass
class FakeKube:
    """State of one fake cluster; `app()` serves it."""

    cluster: str
    token: str = "s3cret-token"
    nodes: list = field(default_factory=list)
    deployments: list = field(default_factory=list)
    pods: list = field(default_factory=list)
    forbidden: set = field(default_factory=set)  # resource names the SA may not list
    delay: float = 0.0
    hits: list = field(default_factory=list)  # (path, authorization header)

    def app(self) -> Starlette:
        async def guard(request: Request, resource: str, group: str, namespaced: bool) -> Response | None:
            self.hits.append((request.url.path, request.headers.get("authorization")))
            if self.delay:
                await asyncio.sleep(self.delay)
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return status_error(401, "Unauthorized", "Unauthorized")
            if resource in self.forbidden:
                scope = f'in the namespace "{NS}"' if namespaced else "at the cluster scope"
                return status_error(
                    403,
                    "Forbidden",
                    f'{resource} is forbidden: User "{SA_USER}" cannot list resource "{resource}" in API group "{group}" {scope}',
                    {"kind": resource} | ({"group": group} if group else {}),
                )
            return None

        def listing(kind: str, api_version: str, items: list) -> JSONResponse:
            return JSONResponse({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "4242"}, "items": items})

        async def nodes(request: Request) -> Response:
            return await guard(request, "nodes", "", False) or listing("NodeList", "v1", self.nodes)

        async def deployments(request: Request) -> Response:
            if request.path_params["ns"] != NS:
                return listing("DeploymentList", "apps/v1", [])
            return await guard(request, "deployments", "apps", True) or listing("DeploymentList", "apps/v1", self.deployments)

        async def pods(request: Request) -> Response:
            if request.path_params["ns"] != NS:
                return listing("PodList", "v1", [])
            return await guard(request, "pods", "", True) or listing("PodList", "v1", self.pods)

        return Starlette(routes=[
            Route("/api/v1/nodes", nodes),
            Route("/apis/apps/v1/namespaces/{ns}/deployments", deployments),
            Route("/api/v1/namespaces/{ns}/pods", pods),
        ])


# Two small clusters as the lesson deploys them (ctx1: gateway + users; ctx2: movies + bookings).
def ctx1_cluster() -> FakeKube:
    return FakeKube(
        cluster="ctx1",
        token="token-ctx1",
        nodes=[node("ctx1-control-plane", "ctx1", control_plane=True), node("ctx1-worker", "ctx1")],
        deployments=[deployment("api-gateway", 1, 1), deployment("user-service", 2, 1)],
        pods=[
            pod("api-gateway-7d9f8c6b5-abcde", "api-gateway", "ctx1-worker", age=3725, restarts=2),
            pod("user-service-7d9f8c6b5-fghij", "user-service", "ctx1-worker", age=120),
            pod("user-service-7d9f8c6b5-klmno", "user-service", "ctx1-worker", age=30, ready=False,
                   waiting="CrashLoopBackOff", restarts=4),
        ],
    )


def ctx2_cluster() -> FakeKube:
    return FakeKube(
        cluster="ctx2",
        token="token-ctx2",
        nodes=[node("ctx2-worker", "ctx2", ready=False)],
        deployments=[deployment("movie-service", 1, 1), deployment("booking-service", 1, 0)],
        pods=[pod("movie-service-5c6d7e8f9-pqrst", "movie-service", "ctx2-worker", age=50)],
    )


def write_kubeconfig(path: Path, server: str, token: str, context: str, extra_context: str | None = None) -> Path:
    """A kubeconfig like `kubectl config view --raw` writes, with token auth."""
    contexts = [{"name": context, "context": {"cluster": context, "user": context, "namespace": NS}}]
    if extra_context:  # a decoy current-context, to check the cluster-named context wins
        contexts.append({"name": extra_context, "context": {"cluster": extra_context, "user": context}})
    clusters = [{"name": context, "cluster": {"server": server}}]
    if extra_context:
        clusters.append({"name": extra_context, "cluster": {"server": "http://127.0.0.1:1"}})
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": contexts,
        "current-context": extra_context or context,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path
