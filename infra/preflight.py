"""Checks against the live cluster before anything is declared.

Only what would otherwise fail late and obscurely is checked here: the app
Deployments require nodes labelled `cluster-name=<cluster>`; without them the
scheduler keeps every app pod Pending and `pulumi up` waits for its rollout
timeout and then reports a scheduling event. This check fails in seconds and
gives the command that fixes it.

The check reads the nodes with lightkube through the same kubeconfig and
context as the provider. It does not run under the Pulumi mocks (tests,
`theater render`), and a cluster it cannot read is left to the provider to
report, with a warning.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from infra.config import ConfigError, StackConfig
from services import catalog


def under_mocks() -> bool:
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import get_monitor

    return isinstance(get_monitor(), MockMonitor)


def read_node_labels(cfg: StackConfig, timeout: float = 10.0) -> dict[str, dict[str, str]]:
    """Node name -> labels, through the stack's kubeconfig and context."""
    from lightkube import Client, KubeConfig
    from lightkube.resources.core_v1 import Node

    config = KubeConfig.from_file(Path(cfg.kubeconfig).expanduser()) if cfg.kubeconfig else KubeConfig.from_env()
    client = Client(config=config.get(context_name=cfg.kube_context), timeout=timeout, trust_env=False)
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
        f"no node of context {cfg.kube_context!r} has the label {label}={cfg.cluster}{found}, so the scheduler "
        f"would keep {', '.join(cfg.here)} Pending. Label the nodes, then run pulumi up again:\n"
        f"    kubectl --context {cfg.kube_context} label nodes --all {label}={cfg.cluster} --overwrite"
    )


def check(cfg: StackConfig) -> None:
    if under_mocks():
        return
    try:
        nodes = read_node_labels(cfg)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the provider's to report
        pulumi.log.warn(f"preflight: could not read the nodes of context {cfg.kube_context!r} ({exc}); "
                        f"skipping the {catalog.CLUSTER_LABEL} label check")
        return
    problem = node_label_problem(cfg, nodes)
    if problem:
        raise ConfigError(problem)
