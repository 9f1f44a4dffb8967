"""The canary, A/B and failover lessons under mocks: movie-service v2 as a
second Deployment in the cluster `v2Cluster` names, subsets v1/v2, canary
weights and the A/B match on every route to movie-service, locality failover
with movie-service in both clusters. Each lesson changes only Istio objects
and the workloads it adds, and turning it off leaves nothing behind."""

from __future__ import annotations

import json
import re

import pytest

from infra import mockrun
from infra.istio.traffic import FAILOVER_PRIORITY
from services import catalog

NS = catalog.NAMESPACE
EDGE = ("VirtualService", "theater-msa", "istio-system")
ISTIO_KINDS = {"VirtualService", "DestinationRule", "PeerAuthentication", "AuthorizationPolicy"}
V2 = {"v2Cluster": "ctx1"}
CANARY = {**V2, "canary": '{"v1": 80, "v2": 20}'}
AB_HEADER = {**V2, "abTest": '{"header": "x-theater-group", "value": "beta"}'}
AB_COOKIE = {**V2, "abTest": '{"cookie": "theater-group", "value": "beta.1"}'}
FAILOVER = {"failover": "true"}
MOVIE_HOST = f"movie-service.{NS}.svc.cluster.local"


def snapshot(run: mockrun.RunResult) -> dict[tuple[str, str | None, str | None], str]:
    return {(o.kind, o.namespace, o.meta_name): json.dumps(o.manifest, sort_keys=True) for o in run.objects}


def changes(a: mockrun.RunResult, b: mockrun.RunResult) -> set[tuple[str, str | None, str | None]]:
    sa, sb = snapshot(a), snapshot(b)
    return {k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k)}


def movie_routes(run: mockrun.RunResult) -> dict[str, list[dict]]:
    """The HTTP routes to movie-service: the mesh VirtualService's and the edge's /movies ones."""
    mesh = run.one("VirtualService", "movie-service", NS).manifest["spec"]["http"]
    out = {"mesh": mesh}
    if run.find(*EDGE[:1], name=EDGE[1], namespace=EDGE[2]):
        edge = run.one(*EDGE).manifest["spec"]["http"]
        out["edge"] = [r for r in edge if r["route"][0]["destination"]["host"] == MOVIE_HOST]
    return out


def subsets(run: mockrun.RunResult) -> list[dict]:
    return run.one("DestinationRule", "movie-service-dr", NS).manifest["spec"].get("subsets", [])


# ------------------------------------------------------------------ v2 Deployment


def test_v2_runs_in_the_cluster_the_setting_names(run_stack):
    ctx1, ctx2 = run_stack("ctx1", **V2), run_stack("ctx2", **V2)
    assert not ctx2.find("Deployment", "movie-service-v2")
    dep = ctx1.one("Deployment", "movie-service-v2", NS).manifest
    pod = dep["spec"]["template"]
    assert dep["metadata"]["labels"][catalog.APP_LABEL] == "movie-service"
    assert dep["metadata"]["labels"][catalog.VERSION_LABEL] == "v2"
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "movie-service", "version": "v2"}
    assert pod["metadata"]["labels"] == {**catalog.labels("movie-service", "v2")}
    (term,) = pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["preference"] == {"matchExpressions": [{"key": catalog.CLUSTER_LABEL, "operator": "In", "values": ["ctx1"]}]}
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SERVICE_VERSION"] == "v2" and env["CLUSTER_NAME"] == "ctx1" and env["SERVICE_NAME"] == "movie-service"
    # Runs as movie-service (AuthorizationPolicies and Kiali see one app), whose account now exists in ctx1 too.
    assert pod["spec"]["serviceAccountName"] == "movie-service"
    assert ctx1.one("ServiceAccount", "movie-service", NS)
    # v1 stays where it was: ctx2.
    assert ctx2.one("Deployment", "movie-service", NS) and not ctx1.find("Deployment", "movie-service")


def test_v2_can_go_to_the_home_cluster_too(run_stack):
    run = run_stack("ctx2", v2Cluster="ctx2")
    assert run.one("Deployment", "movie-service-v2", NS) and run.one("Deployment", "movie-service", NS)
    # Its data is already local: no Redis detour.
    for name in ("movie-service", "movie-service-v2"):
        env = {e["name"]: e.get("value") for e in run.one("Deployment", name, NS).manifest["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["REDIS_URL"] == catalog.REDIS.cluster_url("ctx2"), name


def test_v2_image_is_tagged_per_version(run_stack):
    run = run_stack("ctx1", **V2)
    images = {img.inputs["imageName"]: img.inputs["build"]["args"] for img in run.of_type("docker:index/image:Image")}
    registry = "harbor.203.0.113.10.nip.io/theater-msa"
    assert images[f"{registry}/movie-service:v2"] == {"SERVICE_NAME": "movie-service", "SERVICE_VERSION": "v2"}
    assert f"{registry}/movie-service:v1" not in images  # v1 is not deployed in ctx1
    image = run.one("Deployment", "movie-service-v2", NS).manifest["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(rf"{re.escape(registry)}/movie-service@sha256:[0-9a-f]{{64}}", image)
    assert run.outputs["images"]["movie-service-v2"] == image
    prepushed = run_stack("ctx1", buildImages="false", v2ImageTag="2024.11-v2", **V2)
    container = prepushed.one("Deployment", "movie-service-v2", NS).manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{registry}/movie-service:2024.11-v2"


def test_subsets_in_both_clusters(run_stack):
    for stack in catalog.CLUSTERS:
        assert subsets(run_stack(stack, **V2)) == [
            {"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}},
        ], stack
        assert subsets(run_stack(stack)) == []
    # The v1 subset follows serviceVersion (as a label value).
    assert subsets(run_stack("ctx2", serviceVersion="2024/11", **V2))[0] == {"name": "v1", "labels": {"version": "2024-11"}}


def test_v2_alone_routes_by_endpoints(run_stack):
    """Without canary or abTest the routes still go to the Service: v1 and v2
    share the calls like Istio's multicluster helloworld sample."""
    for stack in catalog.CLUSTERS:
        for where, routes in movie_routes(run_stack(stack, **V2)).items():
            assert [r["route"] for r in routes] == [[{"destination": {"host": MOVIE_HOST, "port": {"number": 8082}}}]] * 2, where


def redis_url(run: mockrun.RunResult, deployment: str) -> str:
    container = run.one("Deployment", deployment, NS).manifest["spec"]["template"]["spec"]["containers"][0]
    return next(e["value"] for e in container["env"] if e["name"] == "REDIS_URL")


def test_a_copy_away_from_home_uses_the_home_redis(run_stack):
    """movie-service's data lives in ctx2's Redis; its pods in ctx1 (v2 or a
    failover copy) must see the same movies: they are given ctx2's Redis
    Service, which ctx1 declares too (its endpoints are ctx2's, through ctx2's
    east-west gateway). Every other pod keeps its own cluster's Redis."""
    ctx2_redis = "redis://redis-ctx2.theater-msa.svc.cluster.local:6379/0"
    for overrides, deployment in ((V2, "movie-service-v2"), (FAILOVER, "movie-service")):
        run = run_stack("ctx1", **overrides)
        assert redis_url(run, deployment) == catalog.REDIS.cluster_url("ctx2") == ctx2_redis
        assert run.one("Service", "redis-ctx2", NS)
        for other in ("user-service", "api-gateway"):
            assert redis_url(run, other) == catalog.REDIS.cluster_url("ctx1"), other
        # No routing by source labels to a subset the other cluster's gateway does not know.
        assert not [o for o in run.find("DestinationRule") if o.manifest["spec"].get("subsets")
                    and "redis" in o.manifest["spec"]["host"]]
    # ctx2 is movie-service's home: its copy there uses ctx2's own Redis, and the Redis objects do not change.
    assert redis_url(run_stack("ctx2", **FAILOVER), "movie-service") == catalog.REDIS.cluster_url("ctx2")
    redis_objects = {k for k in snapshot(run_stack("ctx2")) if k[2] and k[2].startswith("redis")}
    assert redis_objects and not changes(run_stack("ctx2"), run_stack("ctx2", **FAILOVER)) & redis_objects


# ------------------------------------------------------------------ canary and A/B


def test_canary_weights_on_every_route_to_movie_service(run_stack):
    for stack in catalog.CLUSTERS:
        run = run_stack(stack, **CANARY)
        found = movie_routes(run)
        assert ("edge" in found) == (stack == "ctx1")
        for where, routes in found.items():
            assert len(routes) == 2, where
            for r in routes:
                assert r["route"] == [
                    {"destination": {"host": MOVIE_HOST, "port": {"number": 8082}, "subset": "v1"}, "weight": 80},
                    {"destination": {"host": MOVIE_HOST, "port": {"number": 8082}, "subset": "v2"}, "weight": 20},
                ], (stack, where, r["name"])
        for other in ("user-service", "booking-service", "api-gateway"):
            for r in run.one("VirtualService", other, NS).manifest["spec"]["http"]:
                assert all("subset" not in d["destination"] for d in r["route"]), other


def test_canary_all_to_one_version_drops_the_weight(run_stack):
    routes = movie_routes(run_stack("ctx1", v2Cluster="ctx1", canary='{"v1": 0, "v2": 100}'))["mesh"]
    assert [r["route"] for r in routes] == [[{"destination": {"host": MOVIE_HOST, "port": {"number": 8082}, "subset": "v2"}}]] * 2


def first_route(routes: list[dict], method: str, path: str, headers: dict[str, str]) -> dict:
    """The route Envoy picks, evaluating uri prefix, method and header matches."""
    for route in routes:
        for m in route.get("match") or [{}]:
            ok = path.startswith(m.get("uri", {}).get("prefix", ""))
            ok = ok and m.get("method", {}).get("exact", method) == method
            for name, want in (m.get("headers") or {}).items():
                got = headers.get(name)
                if "exact" in want:
                    ok = ok and got == want["exact"]
                else:
                    ok = ok and got is not None and re.fullmatch(want["regex"], got) is not None
            if ok:
                return route
    raise AssertionError(f"no route for {method} {path} {headers}")


def subset_of(route: dict) -> set[str]:
    return {d["destination"].get("subset", "-") for d in route["route"]}


@pytest.mark.parametrize("stack", catalog.CLUSTERS)
def test_ab_header_sends_chosen_users_to_v2(run_stack, stack):
    for where, routes in movie_routes(run_stack(stack, **AB_HEADER)).items():
        for method in ("GET", "POST", "DELETE"):
            chosen = first_route(routes, method, "/movies/", {"x-theater-group": "beta"})
            others = first_route(routes, method, "/movies/", {"x-theater-group": "beta2"})
            assert subset_of(chosen) == {"v2"} and subset_of(others) == {"v1"}, (where, method)
            # POSTs keep their safe retries on both sides of the split.
            if method == "POST":
                assert chosen["retries"]["retryOn"] == others["retries"]["retryOn"] == "connect-failure,refused-stream"


def test_ab_cookie_matches_the_cookie_anywhere_in_the_header(run_stack):
    routes = movie_routes(run_stack("ctx1", **AB_COOKIE))["edge"]
    for cookie, subset in [("theater-group=beta.1", "v2"), ("a=1; theater-group=beta.1", "v2"),
                           ("a=1;theater-group=beta.1; b=2", "v2"), ("theater-group=beta.10", "v1"),
                           ("theater-group=betax1", "v1"), ("xtheater-group=beta.1", "v1"), ("", "v1")]:
        headers = {"cookie": cookie} if cookie else {}
        assert subset_of(first_route(routes, "GET", "/movies/", headers)) == {subset}, cookie


def test_ab_with_canary_weights_the_others(run_stack):
    routes = movie_routes(run_stack("ctx1", **CANARY, abTest='{"header": "x-theater-group", "value": "beta"}'))["edge"]
    assert subset_of(first_route(routes, "GET", "/movies/", {"x-theater-group": "beta"})) == {"v2"}
    assert [d["weight"] for d in first_route(routes, "GET", "/movies/", {})["route"]] == [80, 20]


def test_faults_still_apply_to_every_route_of_the_lesson(run_stack):
    run = run_stack("ctx1", faults='{"movie-service": {"abort": 503, "percent": 10}}', **AB_HEADER)
    assert all("fault" in r for r in movie_routes(run)["mesh"])


# ------------------------------------------------------------------ failover


def test_failover_deploys_movie_service_in_both_clusters_preferring_its_own(run_stack):
    for stack in catalog.CLUSTERS:
        run = run_stack(stack, **FAILOVER)
        dep = run.one("Deployment", "movie-service", NS).manifest
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["CLUSTER_NAME"] == stack and env["SERVICE_VERSION"] == "v1"
        policy = run.one("DestinationRule", "movie-service-dr", NS).manifest["spec"]["trafficPolicy"]
        assert policy["loadBalancer"]["localityLbSetting"] == {"enabled": True, "failoverPriority": FAILOVER_PRIORITY}
        assert FAILOVER_PRIORITY[0] == "topology.istio.io/cluster"
        assert policy["outlierDetection"]["maxEjectionPercent"] == 100
        assert "movie-service" in run.outputs["placement"]["here"]
        for other in ("user-service", "booking-service"):
            assert "localityLbSetting" not in run.one("DestinationRule", f"{other}-dr", NS).manifest["spec"]["trafficPolicy"]["loadBalancer"]


# ------------------------------------------------------------------ what a toggle changes

LESSONS = [
    pytest.param(V2, id="v2"),
    pytest.param(CANARY, id="canary"),
    pytest.param(AB_HEADER, id="ab-header"),
    pytest.param(AB_COOKIE, id="ab-cookie"),
    pytest.param(FAILOVER, id="failover"),
]


@pytest.mark.parametrize("lesson", LESSONS)
@pytest.mark.parametrize("stack", catalog.CLUSTERS)
def test_a_lesson_changes_only_istio_objects_and_the_workloads_it_adds(run_stack, stack, lesson):
    base, on = run_stack(stack), run_stack(stack, **lesson)
    changed = changes(base, on)
    assert changed, "the lesson changed nothing"
    base_keys = set(snapshot(base))
    for kind, namespace, name in changed:
        if kind in ISTIO_KINDS:
            continue
        # Everything else is new (never a change to an existing object): the second
        # version's Deployment, or movie-service (Deployment, ServiceAccount) in a cluster that had none.
        assert (kind, namespace, name) not in base_keys, (kind, name)
        assert (kind, name) in {("Deployment", "movie-service-v2"), ("Deployment", "movie-service"),
                                ("PodDisruptionBudget", "movie-service-v2"), ("PodDisruptionBudget", "movie-service"),
                                ("ServiceAccount", "movie-service")}, (kind, name)


@pytest.mark.parametrize("lesson", LESSONS)
def test_turning_a_lesson_off_leaves_nothing_behind(run_stack, lesson):
    """The settings are the program's only input: off (the key removed) is the
    plain deployment, object for object."""
    for stack in catalog.CLUSTERS:
        off = {k: "" for k in lesson if k != "failover"} | ({"failover": "false"} if "failover" in lesson else {})
        assert snapshot(run_stack(stack, **off)) == snapshot(run_stack(stack))


# ------------------------------------------------------------------ bad settings


def run_error(ui_dir, **overrides) -> str:
    from infra.config import ConfigError

    with pytest.raises(ConfigError) as info:
        mockrun.run("ctx1", mockrun.example(overrides), ui_dir=ui_dir)
    return str(info.value)


@pytest.mark.parametrize("overrides,needle", [
    ({"v2Cluster": "ctx3"}, "theater-msa:v2Cluster must be one of ctx1, ctx2"),
    ({"v2ImageTag": "latest", **V2}, "theater-msa:v2ImageTag"),
    ({"canary": '{"v1": 80, "v2": 20}'}, "theater-msa:canary routes to movie-service v2, which does not run"),
    ({"abTest": '{"header": "x-a", "value": "b"}'}, "theater-msa:abTest routes to movie-service v2"),
    ({"canary": '{"v1": 80, "v2": 30}', **V2}, "add up to 100"),
    ({"canary": '{"v1": 80}', **V2}, "needs exactly the weights v1 and v2"),
    ({"canary": '{"v1": 80.5, "v2": 19.5}', **V2}, "whole number"),
    ({"canary": '{"v1": -20, "v2": 120}', **V2}, "whole number from 0 to 100"),
    ({"canary": '[80, 20]', **V2}, "theater-msa:canary must be a JSON object"),
    ({"canary": "80/20", **V2}, "theater-msa:canary is not valid JSON"),
    ({"abTest": '{"header": "x-a", "cookie": "b", "value": "c"}', **V2}, "either header or cookie"),
    ({"abTest": '{"value": "c"}', **V2}, "either header or cookie"),
    ({"abTest": '{"header": "X-Group", "value": "beta"}', **V2}, "lower-case name"),
    ({"abTest": '{"header": "x-envoy-force", "value": "beta"}', **V2}, "not x-envoy-"),
    ({"abTest": '{"cookie": "group", "value": "a;b"}', **V2}, "value must be"),
    ({"abTest": '{"cookie": "group"}', **V2}, "value must be"),
    ({"abTest": '{"header": "x-a", "value": "b", "weight": 1}', **V2}, "unknown field"),
    ({"serviceVersion": "v2", **V2}, "theater-msa:serviceVersion is v2"),
    ({"failover": "maybe"}, "theater-msa:failover must be true or false"),
])
def test_bad_lesson_settings_are_named(ui_dir, overrides, needle):
    assert needle in run_error(ui_dir, **overrides)
