"""The node-label preflight: its verdict on node lists, and that it stays
out of the way under the Pulumi mocks (the e2e suite runs it for real)."""

from __future__ import annotations

from types import SimpleNamespace

from infra import mockrun, preflight


def cfg(cluster: str = "ctx2", here: tuple[str, ...] = ("movie-service", "booking-service")):
    return SimpleNamespace(cluster=cluster, kube_context=cluster, here=here)


def test_labelled_nodes_pass() -> None:
    nodes = {"n1": {"cluster-name": "ctx2"}, "n2": {}}
    assert preflight.node_label_problem(cfg(), nodes) is None


def test_unlabelled_nodes_give_the_kubectl_command() -> None:
    problem = preflight.node_label_problem(cfg(), {"n1": {}, "n2": {"cluster-name": "ctx1"}})
    assert problem is not None
    assert "kubectl --context ctx2 label nodes --all cluster-name=ctx2" in problem
    assert "found: cluster-name=ctx1" in problem
    assert "movie-service" in problem


def test_a_cluster_running_none_of_our_apps_needs_no_label() -> None:
    assert preflight.node_label_problem(cfg(here=()), {"n1": {}}) is None


def test_skipped_under_mocks(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(preflight, "read_node_labels", lambda *a, **k: calls.append(a) or {})
    result = mockrun.run("ctx2")
    assert result.objects
    assert calls == [], "the preflight read a cluster under mocks"


def ingress_cfg(account: str = "istio-system/*", cluster: str = "ctx1"):
    return SimpleNamespace(cluster=cluster, kube_context=cluster, ingress_service_account=account,
                           ingress_gateway="istio-system/cp-gateway", is_ingress_cluster=cluster == "ctx1")


def test_ingress_account_allowed() -> None:
    assert preflight.ingress_account_problem(ingress_cfg(), {("istio-system", "cp-gateway")}) is None
    pinned = ingress_cfg("istio-system/istio-ingressgateway-service-account")
    assert preflight.ingress_account_problem(pinned, {("istio-system", "istio-ingressgateway-service-account")}) is None
    assert preflight.ingress_account_problem(ingress_cfg(), set()) is None  # nothing to compare with


def test_wrong_ingress_account_names_the_real_one() -> None:
    """A Helm gateway in istio-ingress runs as the release name."""
    problem = preflight.ingress_account_problem(ingress_cfg(), {("istio-ingress", "istio-ingressgateway")})
    assert problem is not None
    assert "RBAC: access denied" in problem
    assert "pulumi config set theater-msa:ingressServiceAccount istio-ingress/istio-ingressgateway --stack ctx1" in problem
    assert "--stack ctx2" in problem
    pinned = ingress_cfg("istio-system/istio-ingressgateway-service-account")
    assert "istio-system/cp-gateway" in preflight.ingress_account_problem(pinned, {("istio-system", "cp-gateway")})


def test_ingress_account_checked_only_in_the_ingress_cluster(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(preflight, "read_ingress_accounts", lambda c: calls.append(c) or {("x", "y")})
    preflight.check_ingress_account(ingress_cfg(cluster="ctx2"))
    assert calls == []
    import pytest

    from infra.config import ConfigError

    with pytest.raises(ConfigError, match="ingressServiceAccount"):
        preflight.check_ingress_account(ingress_cfg())
