"""The explicit Kubernetes provider every Kubernetes object of the stack uses.

The default provider is disabled in Pulumi.yaml
(`pulumi:disable-default-providers: [kubernetes]`), so an object created
without this provider fails instead of landing in kubectl's current context.
An explicit provider does not read `kubernetes:*` stack config, so the
context comes from `theater-msa:kubeContext`.

Objects that already exist (a namespace theater-msa the cluster admin
created, or what the seed's kubectl deployment left behind) are adopted
when `theater-msa:adoptExistingObjects` is true (the default):
- pulumi-kubernetes 4.29 and later fail a create with AlreadyExists unless
  the provider's `upsertExistingObjects` is set. Earlier versions (the
  4.25.0 this repository pins) have no such argument and always upsert with
  server-side apply.
- `enablePatchForce` (in newer SDKs) lets the server-side apply take over
  fields another field manager (kubectl) set with a different value, instead
  of failing with a field conflict. With 4.25.0, run that one `pulumi up` with
  PULUMI_K8S_ENABLE_PATCH_FORCE=true instead (README 3.3).
Each argument is passed only when the installed SDK's Provider has it.
With false, such a create fails; `pulumi import` the object or delete it.
"""

from __future__ import annotations

import inspect
from typing import Any

import pulumi_kubernetes as k8s

from infra.settings import StackConfig


def provider_accepts(argument: str, args_class: type = k8s.ProviderArgs) -> bool:
    """Whether the installed pulumi-kubernetes Provider takes `argument`."""
    return argument in inspect.signature(args_class.__init__).parameters


ADOPTION_ARGUMENTS = ("upsert_existing_objects", "enable_patch_force")


def adoption_args(adopt: bool, args_class: type = k8s.ProviderArgs) -> dict[str, Any]:
    """The Provider arguments that adopt existing objects, as far as the SDK has them."""
    return {name: adopt for name in ADOPTION_ARGUMENTS if provider_accepts(name, args_class)}


def cluster_provider(cfg: StackConfig) -> k8s.Provider:
    return k8s.Provider(
        f"k8s-{cfg.cluster}",
        context=cfg.kube_context,
        # Without a kubeconfig argument the provider reads $KUBECONFIG or ~/.kube/config.
        kubeconfig=cfg.kubeconfig,
        # A stable identity: moving the kubeconfig file does not replace every object.
        cluster_identifier=cfg.kube_context,
        enable_server_side_apply=True,
        **adoption_args(cfg.adopt_existing_objects),
    )
