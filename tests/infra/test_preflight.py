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
    result = mockrun.run("ctx2", mockrun.example())
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


def test_unlabelled_nodes_are_a_warning_not_a_stop(monkeypatch) -> None:
    """The pods only prefer labelled nodes: an NKS node-pool upgrade brings up
    nodes without the label, and the next `pulumi up` must still run."""
    warned = []
    monkeypatch.setattr(preflight, "read_node_labels", lambda cfg: {"n1": {}})
    monkeypatch.setattr(preflight.pulumi.log, "warn", lambda message, *a, **k: warned.append(message))
    preflight.check_node_labels(cfg())
    assert len(warned) == 1 and "kubectl --context ctx2 label nodes --all cluster-name=ctx2" in warned[0]
    assert "Pending" not in warned[0]


# ------------------------------------------------------------------ placement and version lessons on both stacks

def write_stack(root, stack: str, **settings: str) -> None:
    import yaml

    config = {"theater-msa:kubeContext": stack, "theater-msa:harborPassword": {"secure": "v1:abc"}}
    config |= {f"theater-msa:{k}": v for k, v in settings.items()}
    (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))


def test_a_version_lesson_on_one_stack_only_names_the_commands(tmp_path) -> None:
    """v2Cluster and canary on ctx1 alone: ctx2's east-west gateway has no v1
    subset cluster, and ~80% of /movies answer 503. Stopped, with the commands."""
    write_stack(tmp_path, "ctx2")
    mine = {"v2Cluster": "ctx1", "canary": '{"v1": 80, "v2": 20}', "failover": None, "placement": None, "abTest": None}
    problem = preflight.lesson_sync_problem("ctx1", mine, tmp_path)
    assert problem is not None
    assert "theater-msa:v2Cluster: ctx1=ctx1, ctx2=(없음/unset)" in problem
    assert "pulumi config set theater-msa:v2Cluster ctx1 --stack ctx2" in problem
    assert """pulumi config set theater-msa:canary '{"v1": 80, "v2": 20}' --stack ctx2""" in problem
    assert "pulumi up --stack ctx2 && pulumi up --stack ctx1" in problem
    assert "theater-msa:failover" not in problem and "theater-msa:placement" not in problem


def test_equal_lessons_written_differently_agree(tmp_path) -> None:
    write_stack(tmp_path, "ctx2", v2Cluster="ctx1", canary='{"v2":20,"v1":80}', failover=True,
                placement='{"movie-service": "ctx2"}')
    mine = {"v2Cluster": "ctx1", "canary": '{"v1": 80, "v2": 20}', "failover": "true", "placement": None, "abTest": ""}
    assert preflight.lesson_sync_problem("ctx1", mine, tmp_path) is None


def test_a_lesson_left_on_the_other_stack_says_to_remove_it(tmp_path) -> None:
    write_stack(tmp_path, "ctx1", failover="true", abTest='{"header": "x-g", "value": "b"}')
    mine = {key: None for key in ("v2Cluster", "canary", "abTest", "failover", "placement")}
    problem = preflight.lesson_sync_problem("ctx2", mine, tmp_path)
    assert "pulumi config rm theater-msa:failover --stack ctx1" in problem
    assert "pulumi config rm theater-msa:abTest --stack ctx1" in problem


def test_no_file_for_the_other_stack_yet_is_a_warning(tmp_path, monkeypatch) -> None:
    warned = []
    monkeypatch.setattr(preflight.pulumi.log, "warn", lambda message, *a, **k: warned.append(message))
    assert preflight.lesson_sync_problem("ctx1", {"v2Cluster": "ctx1"}, tmp_path) is None
    assert warned and "Pulumi.ctx2.yaml does not exist yet" in warned[0]


def test_the_committed_stacks_agree() -> None:
    from infra import lesson_sync

    ctx1 = lesson_sync.stack_file_values(preflight.PROJECT_DIR, "ctx1")
    ctx2 = lesson_sync.stack_file_values(preflight.PROJECT_DIR, "ctx2")
    assert ctx1 is not None and ctx2 is not None
    assert lesson_sync.differences(ctx1, ctx2) == []


def test_the_stack_files_are_read_where_the_engine_runs_the_project(tmp_path, monkeypatch) -> None:
    """The installed `infra` package need not sit in the project the CLI runs
    (the e2e copies the project; the editable install points at the checkout)."""
    write_stack(tmp_path, "ctx2")
    (tmp_path / "Pulumi.yaml").write_text("name: theater-msa\n")
    # The engine runs the program in `main:` (infra/); the host of `theater sim` sets no root.
    (tmp_path / "infra").mkdir()
    monkeypatch.setattr(preflight.pulumi, "get_root_directory", lambda: None)
    monkeypatch.chdir(tmp_path / "infra")
    assert preflight.project_dir() == tmp_path
    monkeypatch.setattr(preflight.pulumi, "get_root_directory", lambda: str(tmp_path / "infra"))
    assert preflight.project_dir() == tmp_path
    monkeypatch.setattr(preflight.pulumi, "get_root_directory", lambda: str(tmp_path))
    monkeypatch.chdir("/")
    assert preflight.project_dir() == tmp_path
