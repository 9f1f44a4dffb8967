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
