"""The explicit Kubernetes provider every Kubernetes object of the stack uses.

The default provider is disabled in Pulumi.yaml
(`pulumi:disable-default-providers: [kubernetes]`), so an object created
without this provider fails instead of landing in kubectl's current context.
An explicit provider does not read `kubernetes:*` stack config, so the
context comes from `theater-msa:kubeContext`.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

from infra.config import StackConfig


def cluster_provider(cfg: StackConfig) -> k8s.Provider:
    return k8s.Provider(
        f"k8s-{cfg.cluster}",
        context=cfg.kube_context,
        # Without a kubeconfig argument the provider reads $KUBECONFIG or ~/.kube/config.
        kubeconfig=cfg.kubeconfig,
        # A stable identity: moving the kubeconfig file does not replace every object.
        cluster_identifier=cfg.kube_context,
        enable_server_side_apply=True,
    )
