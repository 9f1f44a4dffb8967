"""api-gateway's /api/status for its own cluster, the way a pod reads it
(issue 22): lightkube's in-cluster config from a service-account directory
(token, ca.crt, namespace) and KUBERNETES_SERVICE_HOST/PORT, against a real
kube-apiserver (one `theater sim` control plane) that authenticates the token
(TokenRequest) and authorizes it with RBAC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import catalog
from services.status import sources
from sim import tools
from sim.controlplane import ControlPlane, Ports
from tests.e2e.stack import record_timing
from tests.gateway.test_status import by_name, gateway_settings, get_status, service_account_dir

NS = catalog.NAMESPACE
SA = "api-gateway"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    started = time.monotonic()
    cp = ControlPlane("ctx1", tmp_path_factory.mktemp("sim") / "ctx1", Ports.pick(), "10.96.0.0/16")
    cp.prepare()
    try:
        cp.start(tools.locate(), tools.tool_env())
        record_timing("in-cluster-status-control-plane", time.monotonic() - started)
        yield cp
    finally:
        cp.stop()


def apply(plane: ControlPlane, path: str, body: dict) -> None:
    with plane.client() as c:
        r = c.post(path, json=body)
        assert r.status_code in (201, 409), r.text


def token_for(plane: ControlPlane) -> str:
    apply(plane, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    apply(plane, f"/api/v1/namespaces/{NS}/serviceaccounts",
          {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA, "namespace": NS}})
    with plane.client() as c:
        r = c.post(f"/api/v1/namespaces/{NS}/serviceaccounts/{SA}/token",
                   json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": 3600}})
        assert r.status_code == 201, r.text
        return r.json()["status"]["token"]


def grant_status_reading(plane: ControlPlane) -> None:
    apply(plane, "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "status-reader"},
        "rules": [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list"]},
                  {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}]})
    apply(plane, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "status-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "status-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": NS}]})


def test_status_reads_its_own_cluster_with_the_pod_service_account(
        plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sa_dir = service_account_dir(tmp_path / "serviceaccount", token_for(plane), plane.pki.ca_crt)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(plane.ports.apiserver))
    monkeypatch.setattr(sources, "SERVICE_ACCOUNT_DIR", str(sa_dir))
    settings = gateway_settings(tmp_path, cluster="ctx1")

    # Before RBAC grants it anything, the real authorizer refuses the token's user by name.
    own = by_name(get_status(settings)[0])["ctx1"]
    assert own["source"] == "in-cluster" and own["reachable"] is True, own.get("error")
    assert own["reason"] == "forbidden", own
    assert f"system:serviceaccount:{NS}:{SA}" in own["error"], own["error"]

    grant_status_reading(plane)
    deadline = time.monotonic() + 30  # RBAC is read from the API server's informer cache
    while True:
        own = by_name(get_status(settings)[0])["ctx1"]
        if own.get("reason") is None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert own.get("reason") is None and own["reachable"] is True, own.get("error")
    assert own["server"] == plane.server
