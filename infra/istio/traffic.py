"""Traffic management: the edge VirtualService, per-app DestinationRules and
mesh VirtualServices, and the Redis rules that keep each cluster on its own
Redis.

Lessons (stack settings, off by default) change only these objects:
`faults`, `routePolicies` and `tightCircuitBreaking`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.config import Fault, StackConfig
from infra.istio.typed import (
    ConnectionPoolSettings,
    DestinationRule,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRoute,
    OutlierDetection,
    TrafficPolicy,
    VirtualService,
)
from infra.k8sutil import child, fqdn
from services import catalog

ISTIO_NAMESPACE = "istio-system"
EDGE_VIRTUAL_SERVICE = "theater-msa"
REDIS_LOCAL_SUBSET = "local"

NORMAL_POOL: ConnectionPoolSettings = {
    "tcp": {"maxConnections": 100, "connectTimeout": "2s"},
    "http": {"http1MaxPendingRequests": 100, "http2MaxRequests": 1000, "maxRetries": 3, "idleTimeout": "60s"},
}
NORMAL_OUTLIER: OutlierDetection = {
    "consecutive5xxErrors": 5, "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": 50,
}
# Lesson `tightCircuitBreaking`: one connection, one pending request, eject after one 5xx.
TIGHT_POOL: ConnectionPoolSettings = {
    "tcp": {"maxConnections": 1, "connectTimeout": "1s"},
    "http": {"http1MaxPendingRequests": 1, "http2MaxRequests": 1, "maxRequestsPerConnection": 1, "maxRetries": 0},
}
TIGHT_OUTLIER: OutlierDetection = {
    "consecutive5xxErrors": 1, "interval": "1s", "baseEjectionTime": "3m", "maxEjectionPercent": 100,
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
    spec = catalog.SERVICES[service]
    policy = cfg.route_policy(service)

    def route(route_name: str, method: str | None, retry_on: str) -> HTTPRoute:
        r: HTTPRoute = {"name": route_name}
        match: HTTPMatchRequest = {}
        if prefix is not None:
            match["uri"] = {"prefix": prefix}
        if method is not None:
            match["method"] = {"exact": method}
        if match:
            r["match"] = [match]
        r["route"] = [{"destination": {"host": fqdn(service), "port": {"number": spec.port}}}]
        r["timeout"] = policy.timeout
        r["retries"] = {"attempts": policy.attempts, "perTryTimeout": policy.per_try_timeout, "retryOn": retry_on}
        if service in cfg.faults:
            r["fault"] = fault_injection(cfg.faults[service])
        return r

    return [route(f"{name}-post", NON_IDEMPOTENT_METHOD, SAFE_RETRY_ON), route(name, None, policy.retry_on)]


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
    return {
        "loadBalancer": {"simple": "LEAST_REQUEST"},
        "connectionPool": TIGHT_POOL if tight else NORMAL_POOL,
        "outlierDetection": TIGHT_OUTLIER if tight else NORMAL_OUTLIER,
    }


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
    retries, lesson faults for calls between the apps). Redis: keep each
    cluster on its own instance."""

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
                spec={"host": fqdn(service), "trafficPolicy": app_traffic_policy(cfg, service)},
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
                opts=child(self, depends_on=deps),
                version=cfg.istio_api_version,
            )
        redis = catalog.REDIS
        # The same Service exists in both clusters, so Istio would balance across
        # both Redis instances and split the data. A subset on a pod label the
        # program sets on its own Redis pods (theater-msa/cluster=<cluster>; pod
        # labels reach local and remote endpoints alike, and no Istio cluster ID
        # has to be guessed) plus a TCP route to it keeps clients on the local one.
        self.redis_rule = DestinationRule(
            f"{redis.name}-dr",
            metadata={"name": f"{redis.name}-dr", "namespace": ns, "labels": labels()},
            spec={
                "host": fqdn(redis.name),
                "trafficPolicy": {
                    "connectionPool": {"tcp": {"maxConnections": 200, "connectTimeout": "2s"}},
                    "outlierDetection": {"consecutiveGatewayErrors": 5, "interval": "10s", "baseEjectionTime": "30s"},
                },
                "subsets": [{"name": REDIS_LOCAL_SUBSET, "labels": {catalog.CLUSTER_POD_LABEL: cfg.cluster}}],
                # Only this namespace's clients (and this cluster's istiod) use it.
                "exportTo": ["."],
            },
            opts=child(self, depends_on=deps),
            version=cfg.istio_api_version,
        )
        self.redis_route = VirtualService(
            redis.name,
            metadata={"name": redis.name, "namespace": ns, "labels": labels()},
            spec={
                "hosts": [fqdn(redis.name)],
                "exportTo": ["."],
                "tcp": [{"route": [{"destination": {
                    "host": fqdn(redis.name), "subset": REDIS_LOCAL_SUBSET, "port": {"number": redis.port},
                }}]}],
            },
            opts=child(self, depends_on=deps),
            version=cfg.istio_api_version,
        )
        self.register_outputs({})
