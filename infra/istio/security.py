"""mTLS and authorization: STRICT mTLS in theater-msa, and ALLOW policies for
exactly the calls the app makes. Any workload with an ALLOW policy refuses
every caller the policy does not name; `allow-nothing` makes that the
default for anything else in the namespace.

Callers come from the catalog (`ServiceSpec.calls`) and from the edge
VirtualService (the ingress gateway reaches every service it routes to).
Edge callers (the ingress gateway and api-gateway, which forward what
browsers send) may not reach the service-to-service endpoints under
`catalog.INTERNAL_PREFIX`; only callers inside the app (booking-service) may.
Kubelet probes are rewritten by the sidecar (port 15020) and are not
subject to these policies.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.settings import StackConfig
from infra.istio.traffic import edge_services, labels
from infra.istio.typed import AuthorizationPolicy, Operation, PeerAuthentication, Rule, rule_from
from infra.k8sutil import child, principal, service_account_of
from services import catalog


@dataclass(frozen=True)
class Callers:
    edge: list[str]  # principals limited to the public API (no INTERNAL_PREFIX)
    mesh: list[str]  # principals allowed every path


def allowed_callers(cfg: StackConfig) -> dict[str, Callers]:
    """Service -> principals allowed to call it. The ingress gateway is
    `ingressServiceAccount`; its default namespace/* becomes the principal
    prefix `<trust domain>/ns/<namespace>/sa/*`, which Istio matches against
    every ServiceAccount of that namespace, whatever the install named it."""
    ingress_ns, ingress_sa = cfg.ingress_service_account.split("/", 1)
    ingress = principal(cfg.trust_domain, ingress_ns, ingress_sa)
    routed = set(edge_services())
    callers: dict[str, Callers] = {}
    for name in catalog.SERVICES:
        edge = [ingress] if name in routed else []
        mesh = []
        for caller in catalog.SERVICES.values():
            if name in caller.calls:
                sa = principal(cfg.trust_domain, catalog.NAMESPACE, service_account_of(caller.name))
                (edge if caller.name == catalog.GATEWAY.name else mesh).append(sa)
        callers[name] = Callers(edge, mesh)
    return callers


def allow_rules(callers: Callers) -> list[Rule]:
    """No rule at all (not an empty principal list, which would match anyone)
    when nobody may call the service."""
    rules = []
    if callers.edge:
        public = Operation(notPaths=[catalog.INTERNAL_PREFIX, catalog.INTERNAL_PREFIX + "/*"])
        rules.append(rule_from({"principals": callers.edge}, to=public))
    if callers.mesh:
        rules.append(rule_from({"principals": callers.mesh}))
    return rules


@dataclass(frozen=True)
class SecurityArgs:
    cfg: StackConfig
    depends_on: tuple[pulumi.Resource, ...] = ()


class MeshSecurity(pulumi.ComponentResource):
    def __init__(self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:istio:MeshSecurity", name, None, opts)
        ns = catalog.NAMESPACE
        deps = list(args.depends_on)
        self.peer_authentication = PeerAuthentication(
            "default",
            metadata={"name": "default", "namespace": ns, "labels": labels()},
            spec={"mtls": {"mode": "STRICT"}},
            opts=child(self, depends_on=deps),
            version=args.cfg.istio_api_version,
        )
        self.policies: dict[str, AuthorizationPolicy] = {}
        self.policies["allow-nothing"] = AuthorizationPolicy(
            "allow-nothing",
            metadata={"name": "allow-nothing", "namespace": ns, "labels": labels()},
            spec={},
            opts=child(self, depends_on=deps),
            version=args.cfg.istio_api_version,
        )

        def allow(workload: str, rules: list[Rule]) -> AuthorizationPolicy:
            """`<workload>-allow`: ALLOW exactly `rules` for the workload's pods."""
            return AuthorizationPolicy(
                f"{workload}-allow",
                metadata={"name": f"{workload}-allow", "namespace": ns, "labels": labels()},
                spec={"selector": {"matchLabels": catalog.selector(workload)}, "action": "ALLOW", "rules": rules},
                opts=child(self, depends_on=deps),
                version=args.cfg.istio_api_version,
            )

        for service, callers in allowed_callers(args.cfg).items():
            self.policies[service] = allow(service, allow_rules(callers))
        # Every workload of the namespace may use its cluster's Redis.
        self.policies[catalog.REDIS.name] = allow(catalog.REDIS.name, [rule_from({"namespaces": [ns]})])
        self.register_outputs({})
