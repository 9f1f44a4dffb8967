"""Reading one cluster: its nodes, the namespace's Deployments and pods,
all under one deadline; never raises."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, Pod

from services.status.clients import ClusterClients
from services.status.failures import classify
from services.status.sources import ClusterSource
from services.status.summaries import summarize_deployment, summarize_node, summarize_pod, utcnow

# What the status page lists: (key in the JSON, lightkube resource, namespaced?)
RESOURCES: tuple[tuple[str, Any, bool], ...] = (
    ("nodes", Node, False),
    ("deployments", Deployment, True),
    ("pods", Pod, True),
)


def _empty(source: ClusterSource) -> dict[str, Any]:
    return {
        "name": source.name,
        "role": source.role,
        "source": source.kind,
        "server": None,
        "reachable": False,
        "error": None,
        "reason": None,
        "forbidden": [],
        "nodes": [],
        "deployments": [],
        "pods": [],
        "elapsedMs": 0,
    }


async def read_cluster(
    source: ClusterSource, namespace: str, timeout: float, clients: ClusterClients | None = None
) -> dict[str, Any]:
    """One cluster's nodes, Deployments and pods; never raises. Without
    `clients`, a client is built for this one read and closed after it."""
    out = _empty(source)
    if source.kind == "none":
        out["reason"] = "not_configured" if source.role == "remote" else "not_in_cluster"
        out["error"] = source.why_none
        return out
    start = time.perf_counter()
    own = clients is None
    clients = clients or ClusterClients()
    try:
        out["server"], client = await clients.get(source, namespace, timeout)
    except Exception as exc:  # missing file, bad YAML, missing token...
        out["reason"], out["error"] = "config_error", f"kubeconfig problem: {exc}"
        return out

    async def fetch(resource: Any, namespaced: bool) -> list[Any]:
        if namespaced:
            return [obj async for obj in client.list(resource, namespace=namespace)]
        return [obj async for obj in client.list(resource)]

    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(fetch(res, nsd) for _, res, nsd in RESOURCES), return_exceptions=True),
            timeout=timeout + 0.5,
        )
    except TimeoutError as exc:
        results = [exc] * len(RESOURCES)
    finally:
        if own:
            await clients.aclose()

    now = utcnow()
    summarize: dict[str, Callable[[Any], dict[str, Any]]] = {
        "nodes": summarize_node,
        "deployments": summarize_deployment,
        "pods": lambda p: summarize_pod(p, now),
    }
    errors: list[tuple[str, str]] = []
    answered = False
    for (key, _, namespaced), result in zip(RESOURCES, results, strict=True):
        if isinstance(result, BaseException):
            reason, message, got_answer = classify(result, key, namespaced, namespace)
            answered = answered or got_answer
            errors.append((reason, message))
            if reason == "forbidden":
                out["forbidden"].append(key)
            continue
        answered = True
        try:
            out[key] = sorted((summarize[key](obj) for obj in result), key=lambda item: item["name"])
        except Exception as exc:  # an object shaped unlike the API's: report, don't crash
            errors.append(("error", f"could not read the {key} list: {type(exc).__name__}: {exc}"))
    out["reachable"] = answered
    if errors:
        # The first reason names the situation; every message is kept.
        reasons = [r for r, _ in errors]
        out["reason"] = "forbidden" if "forbidden" in reasons else reasons[0]
        out["error"] = " | ".join(dict.fromkeys(m for _, m in errors))
    out["elapsedMs"] = round((time.perf_counter() - start) * 1000)
    return out
