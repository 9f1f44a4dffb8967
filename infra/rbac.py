"""ServiceAccounts and read-only RBAC.

Every app runs as its own ServiceAccount so that AuthorizationPolicies can
tell callers apart. The api-gateway's status page (and the dashboard account
the other cluster uses) may only read, and only what services/status reads
(lists, no watches): get/list on nodes (cluster scoped: ClusterRole +
ClusterRoleBinding) and on pods and deployments in theater-msa (Role +
RoleBinding). No write verbs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.k8sutil import child, meta
from services import catalog

READ_VERBS = ["get", "list"]
CLUSTER_RULES = [k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["nodes"], verbs=READ_VERBS)]
NAMESPACE_RULES = [
    k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["pods"], verbs=READ_VERBS),
    k8s.rbac.v1.PolicyRuleArgs(api_groups=["apps"], resources=["deployments"], verbs=READ_VERBS),
]


@dataclass(frozen=True)
class ServiceAccountArgs:
    name: str
    # Only the api-gateway talks to the Kubernetes API; the others get no token.
    automount_token: bool = False
    # Secrets the kubelet pulls this account's pod images with (infra/registry_pull.py).
    image_pull_secrets: tuple[str, ...] = ()


class AppServiceAccount(pulumi.ComponentResource):
    def __init__(self, name: str, args: ServiceAccountArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:AppServiceAccount", name, None, opts)
        self.service_account = k8s.core.v1.ServiceAccount(
            args.name,
            metadata=meta(args.name, labels={"app.kubernetes.io/part-of": "theater-msa"}),
            automount_service_account_token=args.automount_token,
            image_pull_secrets=[k8s.core.v1.LocalObjectReferenceArgs(name=s) for s in args.image_pull_secrets] or None,
            opts=child(self),
        )
        self.name = args.name
        self.register_outputs({})


@dataclass(frozen=True)
class ReadOnlyAccessArgs:
    service_account: str
    namespace: str = catalog.NAMESPACE


class ReadOnlyAccess(pulumi.ComponentResource):
    """Read-only RBAC for one ServiceAccount (which must exist)."""

    def __init__(self, name: str, args: ReadOnlyAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:ReadOnlyAccess", name, None, opts)
        sa, ns = args.service_account, args.namespace
        labels = {"app.kubernetes.io/part-of": "theater-msa"}
        # ClusterRoles are cluster scoped: prefix the namespace to stay unique.
        cluster_name = f"{ns}-{sa}-read"
        subject = [k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=sa, namespace=ns)]
        self.cluster_role = k8s.rbac.v1.ClusterRole(
            f"{name}-cluster", metadata=meta(cluster_name, namespace=None, labels=labels), rules=CLUSTER_RULES, opts=child(self)
        )
        self.cluster_role_binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-cluster",
            metadata=meta(cluster_name, namespace=None, labels=labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=cluster_name),
            subjects=subject,
            opts=child(self, depends_on=[self.cluster_role]),
        )
        self.role = k8s.rbac.v1.Role(f"{name}-ns", metadata=meta(f"{sa}-read", ns, labels), rules=NAMESPACE_RULES, opts=child(self))
        self.role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-ns",
            metadata=meta(f"{sa}-read", ns, labels),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=f"{sa}-read"),
            subjects=subject,
            opts=child(self, depends_on=[self.role]),
        )
        self.register_outputs({})
