"""The theater-msa namespace, labelled for Istio sidecar injection."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.k8sutil import child, meta
from services import catalog


@dataclass(frozen=True)
class NamespaceArgs:
    istio_revision: str | None = None


def injection_labels(revision: str | None) -> dict[str, str]:
    return {"istio.io/rev": revision} if revision else {"istio-injection": "enabled"}


class AppNamespace(pulumi.ComponentResource):
    def __init__(self, name: str, args: NamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:AppNamespace", name, None, opts)
        labels = {"app.kubernetes.io/part-of": "theater-msa", **injection_labels(args.istio_revision)}
        self.namespace = k8s.core.v1.Namespace(
            catalog.NAMESPACE,
            metadata=meta(catalog.NAMESPACE, namespace=None, labels=labels),
            opts=child(self),
        )
        self.name = catalog.NAMESPACE
        self.register_outputs({})
