"""Small helpers shared by the components."""

from __future__ import annotations

from typing import Mapping

import pulumi
import pulumi_kubernetes as k8s

from services import catalog


def meta(name: str, namespace: str | None = catalog.NAMESPACE, labels: Mapping[str, str] | None = None,
         annotations: Mapping[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
    """ObjectMeta of a named object (in the app's namespace unless told)."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=namespace,
        labels=dict(labels) if labels else None,
        annotations=dict(annotations) if annotations else None,
    )


def child(parent: pulumi.Resource, *, depends_on: list[pulumi.Resource] | None = None,
          **kwargs) -> pulumi.ResourceOptions:
    """Options for a named Kubernetes object created inside a component.

    Objects carry fixed names (as in the seed), so a replacement must delete
    the old object first.
    """
    return pulumi.ResourceOptions(parent=parent, depends_on=depends_on or [], delete_before_replace=True, **kwargs)


def principal(trust_domain: str, namespace: str, service_account: str) -> str:
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


def service_account_of(service: str) -> str:
    """Every app runs as its own ServiceAccount (AuthorizationPolicies tell callers apart by it)."""
    return catalog.GATEWAY_SERVICE_ACCOUNT if service == catalog.GATEWAY.name else service


def fqdn(name: str, namespace: str = catalog.NAMESPACE) -> str:
    return f"{name}.{namespace}.{catalog.CLUSTER_DOMAIN}"


# Restricted Pod Security Standard, shared by the app and Redis containers.
def restricted_container_security(uid: int, gid: int | None = None) -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=gid,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def restricted_pod_security(uid: int, gid: int) -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=gid,
        fs_group=gid,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def preferred_cluster_affinity(cluster: str) -> k8s.core.v1.AffinityArgs:
    """Prefer nodes labelled cluster-name=<cluster>. Preferred, not required:
    each Deployment exists only in its own cluster's API server, so the label
    decides nothing, and a required term would leave pods Pending on nodes an
    NKS node-pool upgrade brings up without it."""
    term = k8s.core.v1.PreferredSchedulingTermArgs(
        weight=100,
        preference=k8s.core.v1.NodeSelectorTermArgs(
            match_expressions=[k8s.core.v1.NodeSelectorRequirementArgs(key=catalog.CLUSTER_LABEL, operator="In", values=[cluster])]
        ),
    )
    return k8s.core.v1.AffinityArgs(
        node_affinity=k8s.core.v1.NodeAffinityArgs(preferred_during_scheduling_ignored_during_execution=[term])
    )
