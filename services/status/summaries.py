"""What the status page keeps of each node, Deployment and pod."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services import catalog


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def summarize_node(node: Any) -> dict[str, Any]:
    labels = dict(node.metadata.labels or {})
    conditions = (node.status.conditions if node.status else None) or []
    ready = next((c.status == "True" for c in conditions if c.type == "Ready"), False)
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    addresses = (node.status.addresses if node.status else None) or []
    info = node.status.nodeInfo if node.status else None
    return {
        "name": node.metadata.name,
        "clusterLabel": labels.get(catalog.CLUSTER_LABEL),
        "ready": ready,
        "roles": roles,
        "internalIP": next((a.address for a in addresses if a.type == "InternalIP"), None),
        "kubeletVersion": info.kubeletVersion if info else None,
        "unschedulable": bool(node.spec.unschedulable) if node.spec else False,
    }


def summarize_deployment(dep: Any) -> dict[str, Any]:
    spec, status = dep.spec, dep.status
    labels = dict(dep.metadata.labels or {})
    containers = spec.template.spec.containers if spec and spec.template and spec.template.spec else []
    return {
        "name": dep.metadata.name,
        "app": labels.get(catalog.APP_LABEL),
        "version": labels.get(catalog.VERSION_LABEL),
        "desired": spec.replicas if spec and spec.replicas is not None else 1,
        "ready": (status.readyReplicas or 0) if status else 0,
        "updated": (status.updatedReplicas or 0) if status else 0,
        "available": (status.availableReplicas or 0) if status else 0,
        "images": [c.image for c in containers],
    }


def summarize_pod(pod: Any, now: dt.datetime) -> dict[str, Any]:
    meta, spec, status = pod.metadata, pod.spec, pod.status
    labels = dict(meta.labels or {})
    statuses = (status.containerStatuses if status else None) or []
    containers = len(spec.containers) if spec and spec.containers else len(statuses)
    ready_count = sum(1 for c in statuses if c.ready)
    conditions = (status.conditions if status else None) or []
    ready = next((c.status == "True" for c in conditions if c.type == "Ready"), False)
    # Why a container is not running (CrashLoopBackOff, ImagePullBackOff...), for the class to see.
    waiting = next((c.state.waiting.reason for c in statuses if c.state and c.state.waiting and c.state.waiting.reason), None)
    started = meta.creationTimestamp or (status.startTime if status else None)
    phase = status.phase if status and status.phase else "Unknown"
    return {
        "name": meta.name,
        "app": labels.get(catalog.APP_LABEL),
        "version": labels.get(catalog.VERSION_LABEL),
        "node": spec.nodeName if spec else None,
        "phase": "Terminating" if meta.deletionTimestamp else phase,
        "ready": ready,
        "readyContainers": ready_count,
        "containers": containers,
        "restarts": sum(c.restartCount or 0 for c in statuses),
        "waitingReason": waiting,
        "podIP": status.podIP if status else None,
        "createdAt": iso(started),
        "ageSeconds": max(0, int((now - started).total_seconds())) if started else None,
    }
