"""Prometheus, Jaeger and Kiali, read through their HTTP APIs.

Each tool is an `Endpoint`: a base URL given on the command line, or a
Service in istio-system reached through the Kubernetes API server's service
proxy (`/api/v1/namespaces/istio-system/services/<name>:<port>/proxy/`), so
no port-forward is needed. The response shapes are the documented ones:

* Prometheus HTTP API, GET /api/v1/query: {"status": "success", "data":
  {"resultType": "vector", "result": [{"metric": {...}, "value": [t, "v"]}]}}
  (https://prometheus.io/docs/prometheus/latest/querying/api/)
* Jaeger query service, GET /api/traces?service=&lookback=&limit=:
  {"data": [{"traceID", "spans": [{"spanID", "operationName", "processID",
  "tags": [{"key", "value"}]}], "processes": {"p1": {"serviceName", "tags"}}}]}
  (https://www.jaegertracing.io/docs/latest/apis/, the HTTP JSON API the UI uses)
* Kiali, GET /api/namespaces/graph?namespaces=&graphType=: {"elements":
  {"nodes": [{"data": {"id", "nodeType", "cluster", "namespace", "app"}}],
  "edges": [{"data": {"id", "source", "target", "traffic"}}]}}
  (https://kiali.io/docs/, graph API; cytoscape elements)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2

from checklist import kube

ISTIO_NS = "istio-system"
# (tool, candidate Service names, port, path prefix) looked for in istio-system.
DISCOVERY = {
    "prometheus": (("prometheus",), 9090, ""),
    "jaeger": (("tracing", "jaeger-query", "jaeger"), 16686, "/jaeger"),
    "kiali": (("kiali",), 20001, "/kiali"),
}


class TelemetryError(Exception):
    pass


@dataclass
class Endpoint:
    tool: str
    where: str  # shown in the evidence
    fetch: Callable[[str, dict], Any]  # (path, params) -> JSON

    def get(self, path: str, **params: Any) -> Any:
        return self.fetch(path, params)


def url_endpoint(tool: str, base: str, timeout: float = 10.0) -> Endpoint:
    base = base.rstrip("/")

    def fetch(path: str, params: dict) -> Any:
        try:
            r = httpx.get(base + path, params=params, timeout=timeout, trust_env=False)
        except httpx.HTTPError as exc:
            raise TelemetryError(f"{base} 에 연결할 수 없습니다 ({type(exc).__name__})") from None
        if r.status_code != 200:
            raise TelemetryError(f"{base}{path} 가 HTTP {r.status_code} 로 답했습니다")
        return r.json()

    return Endpoint(tool, base, fetch)


def discover(tool: str, cluster: kube.Cluster) -> Endpoint | None:
    """The tool's Service in istio-system, through the API server's service proxy."""
    names, default_port, prefix = DISCOVERY[tool]
    for name in names:
        svc = cluster.get(f"/api/v1/namespaces/{ISTIO_NS}/services/{name}")
        if svc is None:
            continue
        ports = [p.get("port") for p in svc["spec"].get("ports") or []]
        port = default_port if default_port in ports else (ports[0] if ports else default_port)
        base = f"/api/v1/namespaces/{ISTIO_NS}/services/{name}:{port}/proxy"

        def fetch(path: str, params: dict, base: str = base, name: str = name) -> Any:
            # Kiali and Jaeger are often served under a web root (/kiali, /jaeger): try it second.
            status = None
            for candidate in (base + path, base + prefix + path) if prefix else (base + path,):
                try:
                    r = cluster.http.get(candidate, params=params)
                except httpx2.HTTPError as exc:
                    raise TelemetryError(f"{cluster.name} 의 API 서버 프록시 오류 ({type(exc).__name__})") from None
                if r.status_code == 200:
                    return r.json()
                status = r.status_code
            raise TelemetryError(f"{cluster.name} 의 {ISTIO_NS}/{name} 가 {path} 에 답하지 않습니다 (HTTP {status})")

        return Endpoint(tool, f"{cluster.name}:{ISTIO_NS}/{name}:{port}", fetch)
    return None


# ---------------------------------------------------------------- Prometheus


def prom_query(endpoint: Endpoint, query: str) -> list[dict]:
    """The vector of an instant query: [{"metric": {...}, "value": float}]."""
    body = endpoint.get("/api/v1/query", query=query)
    if body.get("status") != "success":
        raise TelemetryError(f"Prometheus: {body.get('errorType')}: {body.get('error')}")
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        raise TelemetryError(f"Prometheus answered resultType {data.get('resultType')!r}, expected vector")
    return [{"metric": s.get("metric") or {}, "value": float(s["value"][1])} for s in data.get("result") or []]


# ---------------------------------------------------------------- Jaeger


def jaeger_traces(endpoint: Endpoint, service: str, lookback: str = "1h", limit: int = 20) -> list[dict]:
    body = endpoint.get("/api/traces", service=service, lookback=lookback, limit=limit)
    return body.get("data") or []


def span_clusters(trace: dict, cluster_of_service: Callable[[str], str | None]) -> dict[str, set[str]]:
    """cluster -> service names whose spans are in the trace. The cluster comes
    from the span's istio.cluster_id tag when Envoy sets it, else from the
    service's placement."""
    processes = trace.get("processes") or {}
    found: dict[str, set[str]] = {}
    for span in trace.get("spans") or []:
        process = processes.get(span.get("processID")) or {}
        service = str(process.get("serviceName") or "")
        tags = {t.get("key"): t.get("value") for t in (span.get("tags") or []) + (process.get("tags") or [])}
        cluster = tags.get("istio.cluster_id") or cluster_of_service(service.split(".", 1)[0])
        if cluster:
            found.setdefault(str(cluster), set()).add(service)
    return found


# ---------------------------------------------------------------- Kiali


def kiali_cross_cluster_edges(endpoint: Endpoint, namespace: str, duration: str = "10m") -> tuple[list[str], int]:
    """(["user-service(ctx1) ← booking-service(ctx2)", ...], number of edges)."""
    body = endpoint.get("/api/namespaces/graph", namespaces=namespace, graphType="versionedApp",
                        duration=duration, injectServiceNodes="true")
    elements = body.get("elements") or {}
    nodes = {n["data"]["id"]: n["data"] for n in elements.get("nodes") or [] if "data" in n}
    edges = [e["data"] for e in elements.get("edges") or [] if "data" in e]
    crossing = []
    for edge in edges:
        source, target = nodes.get(edge.get("source")) or {}, nodes.get(edge.get("target")) or {}
        a, b = source.get("cluster"), target.get("cluster")
        if a and b and a != b and a != "unknown" and b != "unknown":
            crossing.append(f"{label(source)}({a}) → {label(target)}({b})")
    return sorted(set(crossing)), len(edges)


def label(node: dict) -> str:
    return node.get("app") or node.get("service") or node.get("workload") or node.get("id", "?")
