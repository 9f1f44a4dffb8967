"""Traffic management: the edge VirtualService, per-app DestinationRules and
mesh VirtualServices, and a DestinationRule per cluster's Redis Service.

Lessons (stack settings, off by default) change only these objects:
`faults`, `routePolicies` and `tightCircuitBreaking`; and, with a second
Deployment or a copy of movie-service in the other cluster, `v2Cluster`
(subsets v1/v2 in movie-service's DestinationRule), `canary` (weights on
every route to movie-service), `abTest` (a header or cookie match to v2) and
`failover` (localityLbSetting failoverPriority and outlierDetection).

outlierDetection only where a lesson needs it (failover, tightCircuitBreaking):
with it, Envoy also turns on locality-preferred routing (Istio's mesh default
localityLbSetting.enabled: true), and the other cluster, reached through its
east-west gateway, is a single host to Envoy whose ejection (Istio's panic
threshold is 0) takes the whole remote service away for 30 s and more.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.setting_objects import AbTest, Fault
from infra.settings import StackConfig
from infra.istio.typed import (
    ConnectionPoolSettings,
    Destination,
    DestinationRule,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRoute,
    HTTPRouteDestination,
    OutlierDetection,
    StringMatch,
    Subset,
    TrafficPolicy,
    VirtualService,
)
from infra.k8sutil import child, fqdn
from services import catalog

ISTIO_NAMESPACE = "istio-system"
EDGE_VIRTUAL_SERVICE = "theater-msa"
# Envoy closes an idle connection to the app (and between sidecars) after
# this, before the app does: Granian closes an idle keep-alive connection
# after 5 s (services/serve.py HEADER_READ_TIMEOUT). Were the app first, a
# request sent on the connection as it closes is reset, and a reset POST is
# not retried (SAFE_RETRY_ON). tests/infra/test_istio.py compares the two.
APP_IDLE_TIMEOUT = "4s"

NORMAL_POOL: ConnectionPoolSettings = {
    "tcp": {"maxConnections": 100, "connectTimeout": "2s"},
    "http": {"http1MaxPendingRequests": 100, "http2MaxRequests": 1000, "maxRetries": 3, "idleTimeout": APP_IDLE_TIMEOUT},
}
# Lesson `tightCircuitBreaking`: one connection, one pending request, eject after one 5xx.
TIGHT_POOL: ConnectionPoolSettings = {
    "tcp": {"maxConnections": 1, "connectTimeout": "1s"},
    "http": {"http1MaxPendingRequests": 1, "http2MaxRequests": 1, "maxRequestsPerConnection": 1, "maxRetries": 0,
             "idleTimeout": APP_IDLE_TIMEOUT},
}
TIGHT_OUTLIER: OutlierDetection = {
    "consecutive5xxErrors": 1, "interval": "1s", "baseEjectionTime": "3m", "maxEjectionPercent": 100,
}


# Lesson `failover`: endpoints are ranked by how many of these labels they
# share with the client, in order. `topology.istio.io/cluster` (the istiod's
# cluster ID, which Istio puts on every endpoint) first: each cluster prefers
# its own replicas even when both clusters' nodes are in the same region and
# zone; then the nodes' topology.kubernetes.io/region and zone (on NKS, set
# from the NaverCloud region and zone of the node, e.g. KR / KR-1).
FAILOVER_PRIORITY = ["topology.istio.io/cluster", "topology.kubernetes.io/region", "topology.kubernetes.io/zone"]
# Locality failover needs outlier detection (Envoy moves on when the local
# endpoints are ejected): eject after 3 errors, and all of them if need be.
FAILOVER_OUTLIER: OutlierDetection = {
    "consecutive5xxErrors": 3, "interval": "5s", "baseEjectionTime": "30s", "maxEjectionPercent": 100,
}


def labels() -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "theater-msa", "app.kubernetes.io/managed-by": "pulumi"}


def fault_injection(fault: Fault) -> HTTPFaultInjection:
    out: HTTPFaultInjection = {}
    if fault.delay:
        out["delay"] = {"fixedDelay": fault.delay, "percentage": {"value": fault.percent}}
    if fault.abort is not None:
        out["abort"] = {"httpStatus": fault.abort, "percentage": {"value": fault.percent}}
    return out


# Retry conditions under which a request surely did not reach the service.
# POST creates (a user, a movie, a booking) and is not idempotent: a retry
# after a per-try timeout, a reset or a 5xx could create it twice.
SAFE_RETRY_ON = "connect-failure,refused-stream"
NON_IDEMPOTENT_METHOD = "POST"


def http_routes(cfg: StackConfig, service: str, *, name: str, prefix: str | None = None) -> list[HTTPRoute]:
    """Two routes to `service` (for requests under `prefix`, or all): first
    POST, retried only on SAFE_RETRY_ON, then every other method with the
    service's route policy. Faults apply to both."""
    policy = cfg.route_policy(service)

    def route(route_name: str, method: str | None, retry_on: str, ab: bool = False) -> HTTPRoute:
        r: HTTPRoute = {"name": route_name}
        match: HTTPMatchRequest = {}
        if prefix is not None:
            match["uri"] = {"prefix": prefix}
        if method is not None:
            match["method"] = {"exact": method}
        if ab and cfg.ab_test is not None:
            match["headers"] = ab_headers(cfg.ab_test)
        if match:
            r["match"] = [match]
        r["route"] = destinations(cfg, service, to_v2=ab)
        r["timeout"] = policy.timeout
        r["retries"] = {"attempts": policy.attempts, "perTryTimeout": policy.per_try_timeout, "retryOn": retry_on}
        if service in cfg.faults:
            r["fault"] = fault_injection(cfg.faults[service])
        return r

    routes = [route(f"{name}-post", NON_IDEMPOTENT_METHOD, SAFE_RETRY_ON), route(name, None, policy.retry_on)]
    if cfg.ab_test is not None and cfg.subsets(service):
        # Lesson abTest: the chosen users' requests first, each before its general route.
        v2 = catalog.VERSIONS[service].version
        routes = [route(f"{name}-post-{v2}", NON_IDEMPOTENT_METHOD, SAFE_RETRY_ON, ab=True), routes[0],
                  route(f"{name}-{v2}", None, policy.retry_on, ab=True), routes[1]]
    return routes


def ab_headers(ab: AbTest) -> dict[str, StringMatch]:
    """The header match of lesson abTest: the header's exact value, or a
    cookie of that name and value anywhere in the Cookie header."""
    if ab.header is not None:
        return {ab.header: {"exact": ab.value}}
    # Names are [a-z0-9-] and values [A-Za-z0-9._-] (infra/settings.py): only '.' needs escaping.
    value = ab.value.replace(".", "\\.")
    return {"cookie": {"regex": f"^(.*; *)?{ab.cookie}={value}(;.*)?$"}}


def destinations(cfg: StackConfig, service: str, *, to_v2: bool = False) -> list[HTTPRouteDestination]:
    """Where a route to `service` goes: the Service itself (every version,
    by endpoints) unless a canary or A/B lesson routes by subset. Then the
    chosen users (`to_v2`) go to v2, everyone else by the canary weights, or
    to v1 when only abTest is on."""
    spec = catalog.SERVICES[service]
    host: Destination = {"host": fqdn(service), "port": {"number": spec.port}}
    subsets = cfg.subsets(service)
    if not subsets or not (cfg.canary or cfg.ab_test):
        return [{"destination": host}]
    if to_v2:
        return [{"destination": {**host, "subset": catalog.VERSIONS[service].version}}]
    weights = cfg.canary or {catalog.DEFAULT_VERSION: 100}
    out: list[HTTPRouteDestination] = [
        {"destination": {**host, "subset": subset}, "weight": weight} for subset, weight in weights.items() if weight > 0
    ]
    if len(out) == 1:
        del out[0]["weight"]
    return out


def edge_routes(cfg: StackConfig) -> list[HTTPRoute]:
    """/users, /movies, /bookings to their services; everything else to api-gateway."""
    routes = [r for resource, s in catalog.ROUTED.items() for r in http_routes(cfg, s.name, name=resource, prefix=f"/{resource}")]
    routes += http_routes(cfg, catalog.GATEWAY.name, name="ui")
    return routes


def edge_services() -> list[str]:
    """Services the edge VirtualService sends traffic to."""
    return [s.name for s in catalog.ROUTED.values()] + [catalog.GATEWAY.name]


def app_traffic_policy(cfg: StackConfig, service: str) -> TrafficPolicy:
    tight = service in cfg.tight_circuit_breaking
    failover = service in cfg.failover_services
    policy: TrafficPolicy = {
        "loadBalancer": {"simple": "LEAST_REQUEST"},
        "connectionPool": TIGHT_POOL if tight else NORMAL_POOL,
    }
    if tight or failover:
        policy["outlierDetection"] = TIGHT_OUTLIER if tight else FAILOVER_OUTLIER
    if failover:
        policy["loadBalancer"]["localityLbSetting"] = {"enabled": True, "failoverPriority": list(FAILOVER_PRIORITY)}
    return policy


def version_subsets(cfg: StackConfig, service: str) -> list[Subset]:
    """Lesson v2Cluster: subsets v1 and v2 of the app, by its `version` label."""
    return [{"name": name, "labels": {catalog.VERSION_LABEL: label}} for name, label in cfg.subsets(service).items()]


REDIS_POOL: ConnectionPoolSettings = {"tcp": {"maxConnections": 200, "connectTimeout": "2s"}}


@dataclass(frozen=True)
class TrafficArgs:
    cfg: StackConfig
    depends_on: tuple[pulumi.Resource, ...] = ()


class EdgeRouting(pulumi.ComponentResource):
    """The VirtualService bound to the ingress gateway (ingress cluster only)."""

    def __init__(self, name: str, args: TrafficArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:istio:EdgeRouting", name, None, opts)
        cfg = args.cfg
        self.virtual_service = VirtualService(
            EDGE_VIRTUAL_SERVICE,
            metadata={"name": EDGE_VIRTUAL_SERVICE, "namespace": ISTIO_NAMESPACE, "labels": labels()},
            spec={
                "hosts": [cfg.host],
                "gateways": [cfg.ingress_gateway],
                # Destination hosts are fully qualified: this object lives in istio-system.
                "http": edge_routes(cfg),
            },
            opts=child(self, depends_on=list(args.depends_on)),
            version=cfg.istio_api_version,
        )
        self.register_outputs({})


class MeshTraffic(pulumi.ComponentResource):
    """Per app: DestinationRule <svc>-dr and a mesh VirtualService <svc> (timeouts,
    retries, lesson faults for calls between the apps); per cluster's Redis
    Service: DestinationRule redis-<cluster>-dr (connection pool)."""

    def __init__(self, name: str, args: TrafficArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:istio:MeshTraffic", name, None, opts)
        cfg = args.cfg
        deps = list(args.depends_on)
        ns = catalog.NAMESPACE
        self.destination_rules: dict[str, DestinationRule] = {}
        self.virtual_services: dict[str, VirtualService] = {}
        for service in catalog.SERVICES:
            self.destination_rules[service] = DestinationRule(
                f"{service}-dr",
                metadata={"name": f"{service}-dr", "namespace": ns, "labels": labels()},
                spec={"host": fqdn(service), "trafficPolicy": app_traffic_policy(cfg, service),
                      **({"subsets": version_subsets(cfg, service)} if cfg.subsets(service) else {})},
                opts=child(self, depends_on=deps),
                version=cfg.istio_api_version,
            )
            self.virtual_services[service] = VirtualService(
                service,
                metadata={"name": service, "namespace": ns, "labels": labels()},
                spec={
                    "hosts": [fqdn(service)],
                    "gateways": ["mesh"],
                    "http": http_routes(cfg, service, name=service),
                },
                # Subsets before the routes that name them (lessons v2Cluster + canary in one `pulumi up`).
                opts=child(self, depends_on=deps + [self.destination_rules[service]]),
                version=cfg.istio_api_version,
            )
        # One rule per cluster's Redis Service (infra/redis.py): no subsets, which
        # the other cluster's east-west gateway would not know (it builds its
        # passthrough clusters from the DestinationRules visible in its own
        # namespace), and no outlierDetection (one Redis: nothing to fail over to).
        redis = catalog.REDIS
        self.redis_rules: dict[str, DestinationRule] = {}
        for cluster in catalog.CLUSTERS:
            name = f"{redis.service_name(cluster)}-dr"
            self.redis_rules[cluster] = DestinationRule(
                name,
                metadata={"name": name, "namespace": ns, "labels": labels()},
                spec={"host": fqdn(redis.service_name(cluster)), "trafficPolicy": {"connectionPool": REDIS_POOL},
                      # Only this namespace's clients use it.
                      "exportTo": ["."]},
                opts=child(self, depends_on=deps),
                version=cfg.istio_api_version,
            )
        self.register_outputs({})
