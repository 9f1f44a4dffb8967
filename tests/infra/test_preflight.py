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
    monkeypatch.setattr(preflight, "read_unserved_istio_kinds", lambda *a, **k: calls.append(a) or [])
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


def istio_cfg(version: str = "v1", cluster: str = "ctx1"):
    return SimpleNamespace(cluster=cluster, kube_context=cluster, istio_api_version=version)


def test_istio_versions_served_pass() -> None:
    assert preflight.istio_version_problem(istio_cfg(), []) is None


def test_v1_on_an_istio_before_1_22_says_to_use_v1beta1() -> None:
    problem = preflight.istio_version_problem(
        istio_cfg("v1", "ctx2"), ["networking.istio.io/v1 VirtualService", "security.istio.io/v1 PeerAuthentication"])
    assert problem is not None
    assert "networking.istio.io/v1 VirtualService" in problem and "1.22" in problem
    assert "pulumi config set theater-msa:istioApiVersion v1beta1 --stack ctx2" in problem


def test_no_istio_at_all_says_to_install_it() -> None:
    problem = preflight.istio_version_problem(istio_cfg("v1beta1"), ["networking.istio.io/v1beta1 VirtualService"])
    assert problem is not None
    assert "not installed" in problem and "istioApiVersion" not in problem
    assert "kubectl --context ctx1 get crd virtualservices.networking.istio.io" in problem


def test_istio_problem_stops_the_check(monkeypatch) -> None:
    import pytest

    from infra.config import ConfigError

    monkeypatch.setattr(preflight, "read_unserved_istio_kinds", lambda c: ["networking.istio.io/v1 VirtualService"])
    with pytest.raises(ConfigError, match="istioApiVersion v1beta1"):
        preflight.check_istio_versions(istio_cfg())
    monkeypatch.setattr(preflight, "read_unserved_istio_kinds", lambda c: (_ for _ in ()).throw(OSError("refused")))
    preflight.check_istio_versions(istio_cfg())  # a cluster it cannot read is left to the provider
