"""Servers the checklist tests run against.

* `MeshLike`: the four real services on this machine, each saying it runs in
  its home cluster (X-Served-By: user-service@ctx1/..., movie-service@ctx2/...),
  one Redis database per cluster, reached through the real api-gateway.
* `harbor_app`: a registry answering like Harbor's REST API v2.0 (swagger.yaml in
  goharbor/harbor, api/v2.0): GET /api/v2.0/ping → "Pong"; GET /api/v2.0/projects/{name}
  (header X-Is-Resource-Name: true) → the Project, metadata.public "true" or "false"; 404 when absent.
* `Telemetry`: one small server answering like Prometheus, Jaeger and Kiali,
  with bodies shaped exactly like their documented responses:
  - Prometheus HTTP API, GET /api/v1/query (instant query, resultType vector):
    https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
  - Jaeger query service HTTP JSON API, GET /api/traces?service=&lookback=&limit=
    ({"data": [trace], "total", "limit", "offset", "errors"}; a trace is traceID, spans, processes):
    https://www.jaegertracing.io/docs/1.62/apis/#http-json-internal
  - Kiali graph API, GET /kiali/api/namespaces/graph?namespaces=&graphType= (cytoscape
    elements: nodes[].data {id, nodeType, cluster, namespace, app, version}, edges[].data
    {id, source, target, traffic}): Kiali's API reference, swagger.json in github.com/kiali/kiali,
    operation graphNamespaces (GET /api/namespaces/graph, GraphResponse), under the web root /kiali.
  Its Prometheus evaluates the queries verify sends (sum / sum by over
  label matchers = and =~) over a list of series, so a wrong label in a query
  finds nothing, as it would on a real Prometheus.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services import api_gateway, booking_service, catalog, movie_service, user_service
from services.common.settings import Settings
from tests.live import LiveServer

HOME = {"user-service": "ctx1", "api-gateway": "ctx1", "movie-service": "ctx2", "booking-service": "ctx2"}


class MeshLike:
    def __init__(self, redis_base: str) -> None:
        self.redis = {"ctx1": f"{redis_base}/6", "ctx2": f"{redis_base}/7"}
        self.servers: dict[str, LiveServer] = {}

    def settings(self, service: str, **kw) -> Settings:
        cluster = HOME[service]
        return Settings(service=service, cluster=cluster, pod=f"{service}-{cluster}-0", node=f"{cluster}-node-1",
                        redis_url=self.redis[cluster], **kw)

    def start(self) -> MeshLike:
        self.servers["user-service"] = LiveServer(user_service.create_app(self.settings("user-service"))).start()
        self.servers["movie-service"] = LiveServer(movie_service.create_app(self.settings("movie-service"))).start()
        peers = {n: self.servers[n].url for n in ("user-service", "movie-service")}
        self.servers["booking-service"] = LiveServer(
            booking_service.create_app(self.settings("booking-service", peers=peers))).start()
        peers["booking-service"] = self.servers["booking-service"].url
        self.servers["api-gateway"] = LiveServer(api_gateway.create_app(self.settings("api-gateway", peers=peers))).start()
        return self

    @property
    def url(self) -> str:
        return self.servers["api-gateway"].url

    def stop(self) -> None:
        for server in reversed(list(self.servers.values())):
            server.stop()


class VersionedMesh(MeshLike):
    """MeshLike with the canary lesson deployed: movie-service v1 in ctx2 and
    v2 in ctx1, both on ctx2's Redis (infra/istio/traffic.py's Redis route).
    The gateway gets v1's URL `v1_share` times and v2's `v2_share` times, used
    in turn: the split a VirtualService's weights would give. `movie_cluster`
    moves v1 (the failover lesson: the copy in the ingress cluster answers)."""

    def __init__(self, redis_base: str, v1_share: int = 4, v2_share: int = 1, movie_cluster: str = "ctx2") -> None:
        super().__init__(redis_base)
        self.shares = (v1_share, v2_share)
        self.movie_cluster = movie_cluster

    def start(self) -> VersionedMesh:
        self.servers["user-service"] = LiveServer(user_service.create_app(self.settings("user-service"))).start()
        redis = self.redis["ctx2"]
        v1 = Settings(service="movie-service", cluster=self.movie_cluster, pod=f"movie-service-{self.movie_cluster}-0",
                      node=f"{self.movie_cluster}-node-1", redis_url=redis)
        v2 = Settings(service="movie-service", version="v2", cluster="ctx1", pod="movie-service-v2-ctx1-0",
                      node="ctx1-node-1", redis_url=redis)
        self.servers["movie-service"] = LiveServer(movie_service.create_app(v1)).start()
        self.servers["movie-service-v2"] = LiveServer(movie_service.create_app(v2)).start()
        movies = [self.servers["movie-service"].url] * self.shares[0] + [self.servers["movie-service-v2"].url] * self.shares[1]
        peers = {"user-service": self.servers["user-service"].url, "movie-service": ",".join(movies)}
        self.servers["booking-service"] = LiveServer(
            booking_service.create_app(self.settings("booking-service", peers=peers))).start()
        peers["booking-service"] = self.servers["booking-service"].url
        self.servers["api-gateway"] = LiveServer(api_gateway.create_app(self.settings("api-gateway", peers=peers))).start()
        return self


def ab_edge(gateway: str, v1: str, v2: str, header: str, value: str) -> Starlette:
    """The edge VirtualService of the A/B lesson, as a stand-in: GET /movies...
    with `header: value` goes to v2, every other /movies call to v1, anything
    else to the gateway. The answer's X-Served-By comes back unchanged."""
    import httpx

    async def route(request: Request) -> Response:
        path = request.url.path
        if path.startswith("/movies"):
            target = v2 if request.headers.get(header) == value else v1
        else:
            target = gateway
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.request(request.method, target + request.url.path, params=request.query_params,
                                     content=await request.body(), headers={"content-type": request.headers.get("content-type", "")})
        return Response(r.content, status_code=r.status_code, media_type=r.headers.get("content-type"),
                        headers={"x-served-by": r.headers.get("x-served-by", "")})

    return Starlette(routes=[Route("/{path:path}", route, methods=["GET", "POST", "DELETE"])])


# ---------------------------------------------------------------- telemetry

_MATCHER = re.compile(r'(\w+)\s*(=~|!=|=)\s*"([^"]*)"')


def evaluate(query: str, series: list[tuple[dict, float]]) -> list[dict]:
    """The subset of PromQL verify uses: [sum [by (labels)]] (metric{matchers})."""
    m = re.fullmatch(r'\s*(?:sum\s*(?:by\s*\(([^)]*)\))?\s*\()?\s*(\w+)\s*\{([^}]*)\}\s*\)?\s*', query)
    if not m:
        raise ValueError(f"unsupported query: {query}")
    by, name, matchers = m.group(1), m.group(2), _MATCHER.findall(m.group(3))
    aggregate = query.strip().startswith("sum")

    def matches(labels: dict) -> bool:
        if labels.get("__name__") != name:
            return False
        for key, op, value in matchers:
            have = labels.get(key, "")
            if (op == "=" and have != value) or (op == "!=" and have == value) or \
                    (op == "=~" and not re.fullmatch(value, have)):
                return False
        return True

    picked = [(labels, value) for labels, value in series if matches(labels)]
    if not aggregate:
        return [{"metric": labels, "value": [time.time(), repr(value)]} for labels, value in picked]
    keys = [k.strip() for k in by.split(",")] if by else []
    groups: dict[tuple, float] = defaultdict(float)
    for labels, value in picked:
        groups[tuple(labels.get(k, "") for k in keys)] += value
    if not picked:
        return []
    return [{"metric": dict(zip(keys, group, strict=True)), "value": [time.time(), repr(total)]} for group, total in groups.items()]


@dataclass
class Telemetry:
    series: list[tuple[dict, float]] = field(default_factory=list)
    traces: list[dict] = field(default_factory=list)
    graph: dict = field(default_factory=lambda: {"nodes": [], "edges": []})
    queries: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def query(request: Request) -> JSONResponse:
            q = request.query_params.get("query", "")
            self.queries.append(q)
            try:
                result = evaluate(q, self.series)
            except ValueError as exc:
                return JSONResponse({"status": "error", "errorType": "bad_data", "error": str(exc)}, 400)
            return JSONResponse({"status": "success", "data": {"resultType": "vector", "result": result}})

        async def traces(request: Request) -> JSONResponse:
            service = request.query_params.get("service")
            limit = int(request.query_params.get("limit", "20"))
            found = [t for t in self.traces
                     if any(p["serviceName"] == service for p in t["processes"].values())][:limit]
            return JSONResponse({"data": found, "total": 0, "limit": 0, "offset": 0, "errors": None})

        async def graph(request: Request) -> JSONResponse:
            return JSONResponse({"timestamp": int(time.time()), "duration": 600, "graphType":
                                 request.query_params.get("graphType", "versionedApp"), "elements": self.graph})

        return Starlette(routes=[Route("/api/v1/query", query), Route("/api/traces", traces),
                                 Route("/kiali/api/namespaces/graph", graph)])


def istio_requests(source: str, source_cluster: str, dest: str, dest_cluster: str, value: float,
                   mtls: bool = True) -> tuple[dict, float]:
    """One istio_requests_total series with Istio's standard labels."""
    return ({"__name__": "istio_requests_total", "reporter": "destination",
             "source_workload": source, "source_cluster": source_cluster,
             "destination_service_name": dest, "destination_cluster": dest_cluster,
             "destination_service_namespace": catalog.NAMESPACE, "response_code": "200",
             "connection_security_policy": "mutual_tls" if mtls else "none"}, value)


def app_requests(service: str, value: float) -> tuple[dict, float]:
    """The apps' own http_requests_total (services/common/metrics.py), as scraped."""
    return ({"__name__": "http_requests_total", "service": service, "method": "GET", "route": "/healthz",
             "status": "200", "namespace": catalog.NAMESPACE}, value)


def healthy_series() -> list[tuple[dict, float]]:
    return [istio_requests("api-gateway", "ctx1", "movie-service", "ctx2", 12),
            istio_requests("booking-service", "ctx2", "user-service", "ctx1", 5),
            istio_requests("api-gateway", "ctx1", "user-service", "ctx1", 7)] + \
        [app_requests(s, 3) for s in catalog.SERVICES]


def booking_trace(clusters: tuple[str, str] = ("ctx1", "ctx2")) -> dict:
    """A trace of POST /bookings/: ingress (ctx1) → booking-service (ctx2) → user-service (ctx1)."""
    processes = {"p1": {"serviceName": "istio-ingressgateway.istio-system", "tags": [{"key": "ip", "type": "string", "value": "10.0.0.1"}]},
                 "p2": {"serviceName": f"booking-service.{catalog.NAMESPACE}", "tags": []},
                 "p3": {"serviceName": f"user-service.{catalog.NAMESPACE}", "tags": []}}
    spans = []
    for i, (process, cluster) in enumerate((("p1", clusters[0]), ("p2", clusters[1]), ("p3", clusters[0])), 1):
        spans.append({"traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": f"00f067aa0ba902b{i}",
                      "operationName": "booking-service.theater-msa.svc.cluster.local:8083/*", "references": [],
                      "startTime": 1700000000000000 + i, "duration": 1200, "processID": process,
                      "tags": [{"key": "istio.cluster_id", "type": "string", "value": cluster},
                               {"key": "http.status_code", "type": "string", "value": "201"}],
                      "logs": [], "warnings": None})
    return {"traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spans": spans, "processes": processes, "warnings": None}


def kiali_graph(cross: bool = True) -> dict:
    def node(i: str, app: str, cluster: str) -> dict:
        return {"data": {"id": i, "nodeType": "app", "cluster": cluster, "namespace": catalog.NAMESPACE,
                         "app": app, "version": "v1"}}

    nodes = [node("n1", "api-gateway", "ctx1"), node("n2", "user-service", "ctx1"),
             node("n3", "movie-service", "ctx2" if cross else "ctx1")]
    edges = [{"data": {"id": "e1", "source": "n1", "target": "n2",
                       "traffic": {"protocol": "http", "rates": {"http": "1.00", "httpPercentReq": "50.0"}}}},
             {"data": {"id": "e2", "source": "n1", "target": "n3",
                       "traffic": {"protocol": "http", "rates": {"http": "1.00", "httpPercentReq": "50.0"}}}}]
    return {"nodes": nodes, "edges": edges}


def harbor_app(projects: dict[str, bool]) -> Starlette:
    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Pong")

    async def project(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name not in projects:
            return JSONResponse({"errors": [{"code": "NOT_FOUND", "message": f"project {name} not found"}]}, 404)
        return JSONResponse({"project_id": 2, "name": name, "owner_name": "admin", "repo_count": 4,
                             "metadata": {"public": "true" if projects[name] else "false"}})

    return Starlette(routes=[Route("/api/v2.0/ping", ping), Route("/api/v2.0/projects/{name}", project)])
