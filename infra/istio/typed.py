"""Typed Istio resources on top of pulumi_kubernetes' CustomResource.

The spec TypedDicts use the CRDs' camelCase keys: CustomResource passes the
spec through unchanged, so what a type checker accepts here is what the API
server receives. Only the fields this project uses are declared;
tests/infra/test_schemas.py checks the result against the CRDs of an old and
a current Istio release (sim/istio/).

API version: every Istio release from 1.14 to today serves v1beta1 of all four
kinds, while VirtualService, DestinationRule and PeerAuthentication are served
as v1 only from Istio 1.22. So v1beta1 is the default (setting
`theater-msa:istioApiVersion`); the fields used here are the same in both.
"""

from __future__ import annotations

from typing import Literal, Mapping, TypedDict

import pulumi
import pulumi_kubernetes as k8s

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"
API_VERSIONS = ("v1beta1", "v1")
DEFAULT_API_VERSION = "v1beta1"


# --- networking.istio.io VirtualService ---------------------------------

class PortSelector(TypedDict, total=False):
    number: int


class Destination(TypedDict, total=False):
    host: str
    subset: str
    port: PortSelector


class HTTPRouteDestination(TypedDict, total=False):
    destination: Destination
    weight: int


class StringMatch(TypedDict, total=False):
    exact: str
    prefix: str
    regex: str


class HTTPMatchRequest(TypedDict, total=False):
    name: str
    uri: StringMatch
    method: StringMatch
    headers: dict[str, StringMatch]


class HTTPRetry(TypedDict, total=False):
    attempts: int
    perTryTimeout: str
    retryOn: str


class Percent(TypedDict):
    value: float


class FaultDelay(TypedDict, total=False):
    fixedDelay: str
    percentage: Percent


class FaultAbort(TypedDict, total=False):
    httpStatus: int
    percentage: Percent


class HTTPFaultInjection(TypedDict, total=False):
    delay: FaultDelay
    abort: FaultAbort


class HTTPRoute(TypedDict, total=False):
    name: str
    match: list[HTTPMatchRequest]
    route: list[HTTPRouteDestination]
    timeout: str
    retries: HTTPRetry
    fault: HTTPFaultInjection


class VirtualServiceSpec(TypedDict, total=False):
    hosts: list[str]
    gateways: list[str]
    http: list[HTTPRoute]
    exportTo: list[str]


# --- networking.istio.io DestinationRule --------------------------------

class LocalityLbSetting(TypedDict, total=False):
    enabled: bool
    failoverPriority: list[str]


class LoadBalancerSettings(TypedDict, total=False):
    simple: Literal["LEAST_REQUEST", "ROUND_ROBIN", "RANDOM", "LEAST_CONN", "PASSTHROUGH"]
    localityLbSetting: LocalityLbSetting


class TCPSettings(TypedDict, total=False):
    maxConnections: int
    connectTimeout: str


class HTTPSettings(TypedDict, total=False):
    http1MaxPendingRequests: int
    http2MaxRequests: int
    maxRequestsPerConnection: int
    maxRetries: int
    idleTimeout: str


class ConnectionPoolSettings(TypedDict, total=False):
    tcp: TCPSettings
    http: HTTPSettings


class OutlierDetection(TypedDict, total=False):
    consecutive5xxErrors: int
    consecutiveGatewayErrors: int
    interval: str
    baseEjectionTime: str
    maxEjectionPercent: int


class TrafficPolicy(TypedDict, total=False):
    loadBalancer: LoadBalancerSettings
    connectionPool: ConnectionPoolSettings
    outlierDetection: OutlierDetection


class Subset(TypedDict, total=False):
    name: str
    labels: dict[str, str]
    trafficPolicy: TrafficPolicy


class DestinationRuleSpec(TypedDict, total=False):
    host: str
    trafficPolicy: TrafficPolicy
    subsets: list[Subset]
    exportTo: list[str]


# --- security.istio.io ------------------------------------------------------

class WorkloadSelector(TypedDict):
    matchLabels: dict[str, str]


class MutualTLS(TypedDict):
    mode: Literal["STRICT", "PERMISSIVE", "DISABLE"]


class PeerAuthenticationSpec(TypedDict, total=False):
    selector: WorkloadSelector
    mtls: MutualTLS


class Source(TypedDict, total=False):
    principals: list[str]
    namespaces: list[str]


class From(TypedDict):
    source: Source


class Operation(TypedDict, total=False):
    paths: list[str]
    notPaths: list[str]
    methods: list[str]


class To(TypedDict):
    operation: Operation


# `from` is a Python keyword, hence the functional TypedDict syntax.
Rule = TypedDict("Rule", {"from": list[From], "to": list[To]}, total=False)


class AuthorizationPolicySpec(TypedDict, total=False):
    selector: WorkloadSelector
    action: Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"]
    rules: list[Rule]


def rule_from(*sources: Source, to: Operation | None = None) -> Rule:
    """An AuthorizationPolicy rule whose `from` lists the given sources,
    limited to the operation `to` when given."""
    rule = Rule({"from": [From(source=s) for s in sources]})
    if to is not None:
        rule["to"] = [To(operation=to)]
    return rule


class Metadata(TypedDict, total=False):
    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


def type_token(group: str, version: str, kind: str) -> str:
    """The Pulumi type of a CustomResource: it holds the apiVersion."""
    return f"kubernetes:{group}/{version}:{kind}"


class _IstioResource(k8s.apiextensions.CustomResource):
    GROUP: str = ""
    KIND: str = ""

    def __init__(self, resource_name: str, metadata: Metadata, spec: Mapping, opts: pulumi.ResourceOptions | None = None,
                 version: str = DEFAULT_API_VERSION):
        if version not in API_VERSIONS:
            raise ValueError(f"Istio API version must be one of {', '.join(API_VERSIONS)}, got {version!r}")
        # The type token holds the apiVersion, so without these aliases a change of
        # istioApiVersion would be a new resource plus the deletion of the old one,
        # of the same object: Pulumi creates (adopts) it, then deletes it. Aliased,
        # it is one resource whose apiVersion changes (an update in place: the
        # API server serves the same object at both versions).
        aliases = [pulumi.Alias(type_=type_token(self.GROUP, other, self.KIND)) for other in API_VERSIONS if other != version]
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases))
        super().__init__(resource_name, api_version=f"{self.GROUP}/{version}", kind=self.KIND, metadata=dict(metadata),
                         spec=spec, opts=opts)


class VirtualService(_IstioResource):
    GROUP, KIND = NETWORKING, "VirtualService"

    def __init__(self, resource_name: str, metadata: Metadata, spec: VirtualServiceSpec, opts: pulumi.ResourceOptions | None = None,
                 version: str = DEFAULT_API_VERSION):
        super().__init__(resource_name, metadata, spec, opts, version)


class DestinationRule(_IstioResource):
    GROUP, KIND = NETWORKING, "DestinationRule"

    def __init__(self, resource_name: str, metadata: Metadata, spec: DestinationRuleSpec, opts: pulumi.ResourceOptions | None = None,
                 version: str = DEFAULT_API_VERSION):
        super().__init__(resource_name, metadata, spec, opts, version)


class PeerAuthentication(_IstioResource):
    GROUP, KIND = SECURITY, "PeerAuthentication"

    def __init__(self, resource_name: str, metadata: Metadata, spec: PeerAuthenticationSpec, opts: pulumi.ResourceOptions | None = None,
                 version: str = DEFAULT_API_VERSION):
        super().__init__(resource_name, metadata, spec, opts, version)


class AuthorizationPolicy(_IstioResource):
    GROUP, KIND = SECURITY, "AuthorizationPolicy"

    def __init__(self, resource_name: str, metadata: Metadata, spec: AuthorizationPolicySpec, opts: pulumi.ResourceOptions | None = None,
                 version: str = DEFAULT_API_VERSION):
        super().__init__(resource_name, metadata, spec, opts, version)
