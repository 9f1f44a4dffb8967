"""Checks against the live cluster before anything is declared.

Only what would otherwise fail late and obscurely is checked here. Nodes
labelled `cluster-name=<cluster>`: the pods only prefer them (a node-pool
upgrade brings up nodes without the label, and each Deployment exists only in
its own cluster anyway), so their absence is a warning with the command that
labels them (`theater verify` checks placement by the label). In the ingress cluster, the pods of the
ingress Gateway must run as an account `ingressServiceAccount` allows, or
every edge request gets "RBAC: access denied"; the check names the real one.
And the Istio kinds we declare must be served at `istioApiVersion`: Istio
before 1.22 serves VirtualService, DestinationRule and PeerAuthentication
only as v1beta1, and the provider's "no matches for kind" comes only after
half the stack is created. Placement and the version lessons must be the same
on both stacks (infra/lesson_sync.py); the other stack's file is read here.

The check reads the nodes with lightkube through the same kubeconfig and
context as the provider. It does not run under the Pulumi mocks (tests,
`theater render`), and a cluster it cannot read is left to the provider to
report, with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

import pulumi

from infra import lesson_sync
from infra.config import ConfigError
from infra.setting_objects import PROJECT
from infra.settings import StackConfig
from services import catalog

# The checkout's project; under the engine the project is where Pulumi.yaml is
# (pulumi.get_root_directory()), which need not be where this package was imported from.
PROJECT_DIR = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def under_mocks() -> bool:
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import get_monitor

    return isinstance(get_monitor(), MockMonitor)


def kube_client(cfg: StackConfig, timeout: float) -> Any:
    """A lightkube client through the stack's kubeconfig and context, as the provider uses."""
    from lightkube import Client, KubeConfig

    config = KubeConfig.from_file(Path(cfg.kubeconfig).expanduser()) if cfg.kubeconfig else KubeConfig.from_env()
    return Client(config=config.get(context_name=cfg.kube_context), timeout=timeout, trust_env=False)


def read_node_labels(cfg: StackConfig, timeout: float = 10.0) -> dict[str, dict[str, str]]:
    """Node name -> labels, through the stack's kubeconfig and context."""
    from lightkube.resources.core_v1 import Node

    client = kube_client(cfg, timeout)
    try:
        return {n.metadata.name: dict(n.metadata.labels or {}) for n in client.list(Node)}
    finally:
        client.close()


def node_label_problem(cfg: StackConfig, nodes: dict[str, dict[str, str]]) -> str | None:
    """Why the app pods of this stack could not be scheduled, or None."""
    if not cfg.here:
        return None  # nothing of ours is pinned to this cluster
    label = catalog.CLUSTER_LABEL
    if any(labels.get(label) == cfg.cluster for labels in nodes.values()):
        return None
    seen = sorted({f"{label}={labels[label]}" for labels in nodes.values() if label in labels})
    found = f" (found: {', '.join(seen)})" if seen else ""
    return (
        f"no node of context {cfg.kube_context!r} has the label {label}={cfg.cluster}{found}. The pods of "
        f"{', '.join(cfg.here)} only prefer such nodes and run anyway, but `theater verify` checks their placement "
        f"by it. Label the nodes (new nodes of a node-pool upgrade need it again):\n"
        f"    kubectl --context {cfg.kube_context} label nodes --all {label}={cfg.cluster} --overwrite"
    )


def read_ingress_accounts(cfg: StackConfig, timeout: float = 10.0) -> set[tuple[str, str]]:
    """(namespace, ServiceAccount) of the pods the ingress Gateway selects."""
    from lightkube.generic_resource import create_namespaced_resource
    from lightkube.resources.core_v1 import Pod

    client = kube_client(cfg, timeout)
    gateway_kind = create_namespaced_resource("networking.istio.io", "v1beta1", "Gateway", "gateways")
    namespace, name = cfg.ingress_gateway.split("/", 1)
    try:
        gateway = client.get(gateway_kind, name, namespace=namespace)
        selector = dict((gateway.get("spec") or {}).get("selector") or {})
        if not selector:
            return set()
        return {(p.metadata.namespace, p.spec.serviceAccountName or "default")
                for p in client.list(Pod, namespace="*", labels=selector)}
    finally:
        client.close()


def ingress_account_problem(cfg: StackConfig, accounts: set[tuple[str, str]]) -> str | None:
    """Why the AuthorizationPolicies would refuse the ingress gateway, or None.
    `accounts` are the (namespace, ServiceAccount) its pods run as."""
    if not accounts:
        return None  # nothing to compare with
    namespace, name = cfg.ingress_service_account.split("/", 1)
    if any(ns == namespace and name in ("*", sa) for ns, sa in accounts):
        return None
    found = sorted(f"{ns}/{sa}" for ns, sa in accounts)
    key = "theater-msa:ingressServiceAccount"
    return (
        f"{key} is {cfg.ingress_service_account!r}, but the pods of Gateway {cfg.ingress_gateway} run as "
        f"{', '.join(found)}, so the AuthorizationPolicies would answer every request through it with "
        f"`RBAC: access denied`. Set it on both stacks, then run pulumi up again:\n"
        + "".join(f"    pulumi config set {key} {found[0]} --stack {stack}\n" for stack in catalog.CLUSTERS)
    ).rstrip()


# The Istio kinds the program declares: (API group, kind, plural).
ISTIO_KINDS = (
    ("networking.istio.io", "VirtualService", "virtualservices"),
    ("networking.istio.io", "DestinationRule", "destinationrules"),
    ("security.istio.io", "PeerAuthentication", "peerauthentications"),
    ("security.istio.io", "AuthorizationPolicy", "authorizationpolicies"),
)


def read_unserved_istio_kinds(cfg: StackConfig, timeout: float = 10.0) -> list[str]:
    """`group/version Kind` of each Istio kind the cluster does not serve at
    cfg.istio_api_version (a list that answers 404)."""
    from lightkube import ApiError
    from lightkube.generic_resource import create_namespaced_resource

    client = kube_client(cfg, timeout)
    version = cfg.istio_api_version
    unserved = []
    try:
        for group, kind, plural in ISTIO_KINDS:
            resource = create_namespaced_resource(group, version, kind, plural)
            try:
                next(iter(client.list(resource, namespace=catalog.NAMESPACE, chunk_size=1)), None)
            except Exception as exc:
                # An unknown path is a plain-text 404, which lightkube raises as
                # httpx's HTTPStatusError rather than an ApiError.
                response = getattr(exc, "response", None)
                code = exc.status.code if isinstance(exc, ApiError) else getattr(response, "status_code", None)
                if code != 404:
                    raise
                unserved.append(f"{group}/{version} {kind}")
    finally:
        client.close()
    return unserved


def istio_version_problem(cfg: StackConfig, unserved: list[str]) -> str | None:
    """Why the Istio objects of this stack would be refused, or None."""
    if not unserved:
        return None
    key = "theater-msa:istioApiVersion"
    if cfg.istio_api_version != "v1beta1":
        return (
            f"context {cfg.kube_context!r} does not serve {', '.join(unserved)}: Istio before 1.22 serves "
            f"VirtualService, DestinationRule and PeerAuthentication only as v1beta1. Use the version every "
            f"Istio from 1.14 serves, then run pulumi up again:\n"
            f"    pulumi config set {key} v1beta1 --stack {cfg.cluster}"
        )
    return (
        f"context {cfg.kube_context!r} does not serve {', '.join(unserved)}: Istio's CRDs are not installed "
        f"there. Install Istio in this cluster first (README 3.1), then run pulumi up again. Check with:\n"
        f"    kubectl --context {cfg.kube_context} get crd virtualservices.networking.istio.io"
    )


def _checked(cfg: StackConfig, what: str, check: str, read: Callable[[StackConfig], T],
             problem: Callable[[StackConfig, T], str | None]) -> None:
    """Read `what` from the cluster and stop with `problem`'s message, if any.
    A cluster we cannot read is reported (the provider will say more), not fatal."""
    try:
        found = read(cfg)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the provider's to report
        pulumi.log.warn(f"preflight: could not read {what} in context {cfg.kube_context!r} ({exc}); "
                        f"skipping the {check} check")
        return
    message = problem(cfg, found)
    if message:
        raise ConfigError(message)


def check_istio_versions(cfg: StackConfig) -> None:
    _checked(cfg, "the Istio APIs", "istioApiVersion", read_unserved_istio_kinds, istio_version_problem)


def check_ingress_account(cfg: StackConfig) -> None:
    """In the cluster whose ingress gateway the edge VirtualService binds to:
    the gateway pods must run as an account ingressServiceAccount allows."""
    if not cfg.is_ingress_cluster:
        return

    def problem(cfg: StackConfig, accounts: set[tuple[str, str]]) -> str | None:
        if not accounts:
            pulumi.log.warn(f"preflight: no pod runs for Gateway {cfg.ingress_gateway} in context "
                            f"{cfg.kube_context!r}; skipping the ingressServiceAccount check")
        return ingress_account_problem(cfg, accounts)

    _checked(cfg, f"Gateway {cfg.ingress_gateway} and its pods", "ingressServiceAccount", read_ingress_accounts, problem)


def check_node_labels(cfg: StackConfig) -> None:
    """A warning, never a stop: the pods only prefer the labelled nodes."""

    def warn(cfg: StackConfig, nodes: dict[str, dict[str, str]]) -> None:
        message = node_label_problem(cfg, nodes)
        if message:
            pulumi.log.warn(f"preflight: {message}")

    _checked(cfg, "the nodes", f"{catalog.CLUSTER_LABEL} label", read_node_labels, warn)


def lesson_sync_problem(stack: str, mine: dict, root: Path = PROJECT_DIR) -> str | None:
    """Why this stack and the other (stacks are named after the clusters, README
    3.2) would break each other's routes: lesson_sync compares their files."""
    for other in catalog.CLUSTERS:
        if other == stack:
            continue
        theirs = lesson_sync.stack_file_values(root, other)
        if theirs is None:
            pulumi.log.warn(f"preflight: Pulumi.{other}.yaml does not exist yet; placement and the version lessons "
                            f"must be set the same on both stacks")
            continue
        problem = lesson_sync.mismatch_problem(stack, mine, other, theirs)
        if problem:
            return problem
    return None


def project_dir() -> Path:
    """Where Pulumi.yaml and the stack files are: the engine's project root
    (set by the official language host), else the first folder up from the
    working directory that holds Pulumi.yaml (the engine runs the program in
    `main:`, infra/, and the host of `theater sim` sets no root), else this checkout."""
    root = pulumi.get_root_directory()
    if root and (Path(root) / "Pulumi.yaml").is_file():
        return Path(root)
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return PROJECT_DIR


def check_lesson_sync(cfg: StackConfig) -> None:
    config = pulumi.Config(PROJECT)
    mine = {key: config.get(key) for key in lesson_sync.SHARED}
    problem = lesson_sync_problem(pulumi.get_stack(), mine, project_dir())
    if problem:
        raise ConfigError(problem)


def check(cfg: StackConfig) -> None:
    if under_mocks():
        return
    check_lesson_sync(cfg)
    check_istio_versions(cfg)
    check_ingress_account(cfg)
    check_node_labels(cfg)
