"""Istio objects: edge VirtualService, DestinationRules, PeerAuthentication,
AuthorizationPolicies, and the lesson toggles (which change Istio objects only)."""

from __future__ import annotations

import json

import pytest

from infra import mockrun
from infra.setting_objects import DEFAULT_ROUTE_POLICY
from services import catalog

NS = catalog.NAMESPACE
ISTIO_KINDS = {"VirtualService", "DestinationRule", "PeerAuthentication", "AuthorizationPolicy"}


def fqdn(name: str) -> str:
    return f"{name}.{NS}.svc.cluster.local"


def test_edge_virtual_service_only_in_ctx1(ctx1, ctx2):
    assert ctx2.find("VirtualService", "theater-msa") == []
    assert ctx2.find("VirtualService", namespace="istio-system") == []
    vs = ctx1.one("VirtualService", "theater-msa", "istio-system").manifest
    assert vs["apiVersion"] == "networking.istio.io/v1beta1"
    spec = vs["spec"]
    assert spec["gateways"] == ["istio-system/cp-gateway"]
    assert spec["hosts"] == ["theater.203.0.113.10.nip.io"]
    by_prefix = {}
    for route in spec["http"]:
        prefix = route["match"][0].get("uri", {}).get("prefix") if "match" in route else None
        (dest,) = route["route"]
        by_prefix[prefix] = dest["destination"]["host"]
        assert route["timeout"] == DEFAULT_ROUTE_POLICY["timeout"]
        assert route["retries"]["attempts"] == DEFAULT_ROUTE_POLICY["attempts"]
        assert route["retries"]["perTryTimeout"] and route["retries"]["retryOn"]
        assert "fault" not in route
        assert dest["destination"]["host"].endswith(".theater-msa.svc.cluster.local")
    assert by_prefix == {
        "/users": fqdn("user-service"),
        "/movies": fqdn("movie-service"),
        "/bookings": fqdn("booking-service"),
        None: fqdn("api-gateway"),
    }
    # the catch-all comes last, or it would shadow the prefixes
    assert "match" not in spec["http"][-1]


def test_ingress_gateway_setting(run_stack):
    run = run_stack("ctx1", ingressGateway="istio-system/other-gw")
    assert run.one("VirtualService", "theater-msa", "istio-system").manifest["spec"]["gateways"] == ["istio-system/other-gw"]


def test_destination_rules(each_stack):
    for name in catalog.SERVICES:
        dr = each_stack.one("DestinationRule", f"{name}-dr", NS).manifest["spec"]
        assert dr["host"] == fqdn(name)
        tp = dr["trafficPolicy"]
        assert tp["loadBalancer"] == {"simple": "LEAST_REQUEST"}
        assert tp["connectionPool"]["tcp"]["maxConnections"] >= 10
        # No outlierDetection unless a lesson asks for it: with it Envoy routes by locality,
        # and the other cluster is one host (its east-west gateway) whose ejection empties the service.
        assert "outlierDetection" not in tp


def test_outlier_detection_only_for_the_lessons_that_need_it(run_stack):
    tight = run_stack("ctx2", tightCircuitBreaking='["booking-service"]')
    assert tight.one("DestinationRule", "booking-service-dr", NS).manifest["spec"]["trafficPolicy"]["outlierDetection"]
    assert "outlierDetection" not in tight.one("DestinationRule", "movie-service-dr", NS).manifest["spec"]["trafficPolicy"]
    failover = run_stack("ctx2", failover="true")
    assert failover.one("DestinationRule", "movie-service-dr", NS).manifest["spec"]["trafficPolicy"]["outlierDetection"]
    assert "outlierDetection" not in failover.one("DestinationRule", "user-service-dr", NS).manifest["spec"]["trafficPolicy"]


def seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def test_sidecars_close_idle_connections_before_the_app_does(each_stack):
    """Granian closes an idle keep-alive connection after HEADER_READ_TIMEOUT;
    the sidecar must drop it first, or a request sent as the app closes it is
    reset (and a reset POST is not retried)."""
    from services.serve import HEADER_READ_TIMEOUT

    for name in catalog.SERVICES:
        http = each_stack.one("DestinationRule", f"{name}-dr", NS).manifest["spec"]["trafficPolicy"]["connectionPool"]["http"]
        assert seconds(http["idleTimeout"]) < HEADER_READ_TIMEOUT, name
    from infra.istio.traffic import TIGHT_POOL

    assert seconds(TIGHT_POOL["http"]["idleTimeout"]) < HEADER_READ_TIMEOUT


def test_each_cluster_redis_is_its_own_service(run_stack):
    """One Service per cluster's Redis, declared in both clusters, and no
    DestinationRule subset: another cluster's east-west gateway builds its
    passthrough clusters from the DestinationRules exported to its own
    namespace, so a subset of ours (exportTo ".") would not exist there."""
    for stack in catalog.CLUSTERS:
        run = run_stack(stack)
        assert run.find("VirtualService", "redis", NS) == [] and run.find("DestinationRule", "redis-dr", NS) == []
        for cluster in catalog.CLUSTERS:
            dr = run.one("DestinationRule", f"redis-{cluster}-dr", NS).manifest["spec"]
            assert dr["host"] == fqdn(f"redis-{cluster}")
            assert "subsets" not in dr and "outlierDetection" not in dr["trafficPolicy"]
            assert dr["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"] >= 100
        assert not [o for o in run.objects if o.kind == "DestinationRule" and "subsets" in o.manifest["spec"]
                    and "redis" in o.manifest["spec"]["host"]]
        assert "topology.istio.io/cluster" not in json.dumps([o.manifest for o in run.objects])


@pytest.mark.parametrize("before,after", [("v1beta1", "v1"), ("v1", "v1beta1")])
def test_switching_the_istio_api_version_deletes_nothing(run_stack, before, after):
    """The type token of a CustomResource holds its apiVersion: without
    aliases, Pulumi would create the object at the new version (the same
    object) and delete the old resource, i.e. the object itself."""
    for stack in catalog.CLUSTERS:
        old, new = run_stack(stack, istioApiVersion=before), run_stack(stack, istioApiVersion=after)
        istio = [r for r in new.objects if r.kind in ISTIO_KINDS]
        assert istio and all(r.type.startswith(f"kubernetes:{r.manifest['apiVersion']}:") for r in istio)
        assert all(r.manifest["apiVersion"].endswith("/" + after) for r in istio)
        assert old.deleted_by(new) == [], stack
        # The check sees a real change: without the aliases every Istio object would go.
        unaliased = [r.urn for r in old.resources if r.kind in ISTIO_KINDS]
        assert {u for u in unaliased if u not in {n.urn for n in new.resources}} == set(unaliased)


def test_no_istio_cluster_id_setting():
    from infra.settings import SETTINGS_BY_KEY

    assert "istioClusterId" not in SETTINGS_BY_KEY


def test_peer_authentication_strict(each_stack):
    (pa,) = each_stack.find("PeerAuthentication")
    assert pa.namespace == NS
    assert pa.manifest["spec"] == {"mtls": {"mode": "STRICT"}}


def principals(run: mockrun.RunResult, workload: str) -> set[str]:
    spec = run.one("AuthorizationPolicy", f"{workload}-allow", NS).manifest["spec"]
    assert spec["action"] == "ALLOW"
    assert spec["selector"] == {"matchLabels": {"app": workload}}
    return {p for rule in spec["rules"] for f in rule["from"] for p in f["source"].get("principals", [])}


def test_authorization_policies(each_stack):
    # Any ServiceAccount of the gateway's namespace: holds for istioctl, operator and Helm installs.
    ingress = "cluster.local/ns/istio-system/sa/*"
    sa = lambda name: f"cluster.local/ns/theater-msa/sa/{name}"  # noqa: E731
    assert principals(each_stack, "user-service") == {ingress, sa("api-gateway"), sa("booking-service")}
    assert principals(each_stack, "movie-service") == {ingress, sa("api-gateway"), sa("booking-service")}
    assert principals(each_stack, "booking-service") == {ingress, sa("api-gateway")}
    assert principals(each_stack, "api-gateway") == {ingress}
    # Edge callers (ingress, api-gateway) never reach the service-to-service endpoints.
    for service in catalog.SERVICES:
        for rule in each_stack.one("AuthorizationPolicy", f"{service}-allow", NS).manifest["spec"]["rules"]:
            names = {p for f in rule["from"] for p in f["source"]["principals"]}
            if names & {ingress, sa("api-gateway")}:
                assert rule["to"] == [{"operation": {"notPaths": [catalog.INTERNAL_PREFIX, catalog.INTERNAL_PREFIX + "/*"]}}]
                assert not names & {sa("booking-service")}
            else:
                assert "to" not in rule
    redis = each_stack.one("AuthorizationPolicy", "redis-allow", NS).manifest["spec"]
    assert redis["rules"] == [{"from": [{"source": {"namespaces": [NS]}}]}]
    # deny by default for anything else in the namespace
    nothing = each_stack.one("AuthorizationPolicy", "allow-nothing", NS).manifest
    assert nothing.get("spec", {}) == {}
    assert {p.meta_name for p in each_stack.find("AuthorizationPolicy")} == {
        "allow-nothing", "redis-allow", *(f"{s}-allow" for s in catalog.SERVICES)
    }


def test_ingress_identity_does_not_depend_on_the_install_method(each_stack):
    """istioctl and operator installs name the gateway's account
    istio-ingressgateway-service-account, the Helm gateway chart names it after
    the release; the default allows either."""
    text = json.dumps([p.manifest for p in each_stack.find("AuthorizationPolicy")])
    assert "istio-ingressgateway-service-account" not in text
    for sa in ("istio-ingressgateway-service-account", "cp-gateway", "istio-ingressgateway"):
        caller = f"cluster.local/ns/istio-system/sa/{sa}"
        assert any(allows(p, caller) for p in principals(each_stack, "api-gateway")), caller
    assert not any(allows(p, "cluster.local/ns/default/sa/istio-ingressgateway-service-account")
                   for p in principals(each_stack, "api-gateway"))


def allows(pattern: str, principal: str) -> bool:
    """Istio's principal match: exact, or a prefix ending in *."""
    return principal.startswith(pattern[:-1]) if pattern.endswith("*") else principal == pattern


@pytest.mark.parametrize("value", ["istio-system/", "*/cp-gateway", "istio-system/cp*", "istio-system"])
def test_ingress_service_account_must_be_namespace_and_name_or_star(ui_dir, value):
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match="theater-msa:ingressServiceAccount"):
        mockrun.run("ctx1", mockrun.example({"ingressServiceAccount": value}), ui_dir=ui_dir)


def test_ingress_service_account_setting(run_stack):
    run = run_stack("ctx2", ingressServiceAccount="istio-ingress/cp-gateway", trustDomain="example.org")
    assert "example.org/ns/istio-ingress/sa/cp-gateway" in principals(run, "api-gateway")
    assert "example.org/ns/theater-msa/sa/api-gateway" in principals(run, "movie-service")


def snapshot(run: mockrun.RunResult) -> dict[tuple[str, str | None, str | None], str]:
    return {(o.kind, o.namespace, o.meta_name): json.dumps(o.manifest, sort_keys=True) for o in run.objects}


def changed_kinds(a: mockrun.RunResult, b: mockrun.RunResult) -> set[str]:
    sa, sb = snapshot(a), snapshot(b)
    keys = set(sa) | set(sb)
    return {k[0] for k in keys if sa.get(k) != sb.get(k)}


LESSONS = [
    pytest.param({"faults": '{"movie-service": {"delay": "3s", "percent": 50}}'}, id="fault-delay"),
    pytest.param({"faults": '{"booking-service": {"abort": 503, "percent": 20}}'}, id="fault-abort"),
    pytest.param({"tightCircuitBreaking": '["movie-service"]'}, id="circuit-breaking"),
    pytest.param({"routePolicies": '{"movie-service": {"timeout": "1s", "attempts": 0}}'}, id="route-policy"),
]


@pytest.mark.parametrize("lesson", LESSONS)
@pytest.mark.parametrize("stack", catalog.CLUSTERS)
def test_lessons_change_only_istio_objects(run_stack, stack, lesson):
    base, changed = run_stack(stack), run_stack(stack, **lesson)
    kinds = changed_kinds(base, changed)
    assert kinds, "the lesson changed nothing"
    assert kinds <= ISTIO_KINDS, kinds
    assert len(base.objects) == len(changed.objects)


def test_fault_delay_applied(run_stack):
    run = run_stack("ctx1", faults='{"movie-service": {"delay": "3s", "percent": 50}}')
    mesh = run.one("VirtualService", "movie-service", NS).manifest["spec"]["http"][0]
    assert mesh["fault"] == {"delay": {"fixedDelay": "3s", "percentage": {"value": 50}}}
    edge = run.one("VirtualService", "theater-msa", "istio-system").manifest["spec"]["http"]
    assert [r["name"] for r in edge if "fault" in r] == ["movies-post", "movies"]
    # other services untouched
    assert "fault" not in run.one("VirtualService", "user-service", NS).manifest["spec"]["http"][0]


def test_tight_circuit_breaking_applied(run_stack, ctx2):
    run = run_stack("ctx2", tightCircuitBreaking='["movie-service"]')
    tight = run.one("DestinationRule", "movie-service-dr", NS).manifest["spec"]["trafficPolicy"]
    normal = ctx2.one("DestinationRule", "movie-service-dr", NS).manifest["spec"]["trafficPolicy"]
    assert tight["connectionPool"]["tcp"]["maxConnections"] == 1
    assert tight["connectionPool"]["http"]["http1MaxPendingRequests"] == 1
    assert tight["outlierDetection"]["consecutive5xxErrors"] == 1
    assert normal["connectionPool"]["tcp"]["maxConnections"] > 1


def test_route_policy_applied(run_stack):
    run = run_stack("ctx1", routePolicies='{"movie-service": {"timeout": "1s", "attempts": 0}}')
    route = run.one("VirtualService", "movie-service", NS).manifest["spec"]["http"][0]
    assert route["timeout"] == "1s" and route["retries"]["attempts"] == 0


def test_istio_api_version_defaults_to_v1beta1(each_stack):
    """v1beta1 is served by every Istio from 1.14 to today; v1 of VirtualService,
    DestinationRule and PeerAuthentication only from 1.22."""
    versions = {(o.kind, o.manifest["apiVersion"]) for o in each_stack.objects if o.kind in ISTIO_KINDS}
    assert versions == {
        ("VirtualService", "networking.istio.io/v1beta1"), ("DestinationRule", "networking.istio.io/v1beta1"),
        ("PeerAuthentication", "security.istio.io/v1beta1"), ("AuthorizationPolicy", "security.istio.io/v1beta1"),
    }


def test_istio_api_version_setting(run_stack, ui_dir):
    run = run_stack("ctx1", istioApiVersion="v1")
    istio = [o for o in run.objects if o.kind in ISTIO_KINDS]
    assert istio and all(o.manifest["apiVersion"].endswith(".istio.io/v1") for o in istio)
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match="theater-msa:istioApiVersion"):
        mockrun.run("ctx1", mockrun.example({"istioApiVersion": "v1alpha3"}), ui_dir=ui_dir)


SAFE_RETRY_ON = {"connect-failure", "refused-stream"}


def route_for(routes: list[dict], method: str, path: str) -> dict:
    """The first HTTP route of a VirtualService that Envoy would pick."""
    for route in routes:
        matches = route.get("match")
        if not matches:
            return route
        for m in matches:
            prefix_ok = path.startswith(m.get("uri", {}).get("prefix", ""))
            method_ok = m.get("method", {}).get("exact", method) == method
            if prefix_ok and method_ok:
                return route
    raise AssertionError(f"no route for {method} {path}")


PATHS = ["/", "/users/", "/movies/", "/bookings/", "/internal/movies/m_1/reservations"]


@pytest.mark.parametrize("policies", [
    None,
    '{"booking-service": {"retryOn": "5xx,reset,gateway-error", "attempts": 3}}',
], ids=["default", "lesson-retries-everything"])
def test_a_post_is_retried_only_when_it_surely_did_not_reach_the_service(run_stack, policies):
    """POST /bookings/ (and /users/, /movies/) is not idempotent: a retry after a
    per-try timeout or a reset could book twice. Every VirtualService route a
    POST can take retries only on connect-failure and refused-stream; GETs keep
    the route policy (gateway-error too)."""
    overrides = {"routePolicies": policies} if policies else {}
    checked = 0
    for stack in catalog.CLUSTERS:
        run = run_stack(stack, **overrides)
        for vs in run.find("VirtualService"):
            routes = vs.manifest["spec"].get("http")
            if not routes:
                continue  # the Redis VirtualService is TCP
            for path in PATHS:
                post = route_for(routes, "POST", path)
                assert set(post["retries"]["retryOn"].split(",")) <= SAFE_RETRY_ON, (vs.meta_name, path, post)
                get = route_for(routes, "GET", path)
                assert get["route"] == post["route"] and get["timeout"] == post["timeout"]
                assert "gateway-error" in get["retries"]["retryOn"].split(",") or policies
                checked += 1
    assert checked > 40
    run = run_stack("ctx1", **overrides)
    edge = run.one("VirtualService", "theater-msa", "istio-system").manifest["spec"]["http"]
    assert route_for(edge, "POST", "/bookings/")["route"][0]["destination"]["host"] == fqdn("booking-service")
