"""`theater verify`: after `pulumi up`, the seed's demo checklist item by item.

Each item is PASS / FAIL / SKIP with the evidence it saw (pod names, headers,
Prometheus series, Kiali edges, a Jaeger trace id). Sections:

* placement and injection: pods where the placement table says, every app
  pod 2/2 with istio-proxy, the injection label on the namespace;
* edge routing: http://theater.<domain> answers, every route reaches its
  service (X-Served-By), DestinationRules, PeerAuthentication STRICT, the edge
  VirtualService;
* mesh: mTLS in use, cross-cluster calls both ways (X-Served-By and
  Prometheus' source_cluster / destination_cluster);
* lessons: with a lesson toggle on (faults, tightCircuitBreaking), its effect
  is observed;
* observability: Kiali's graph has edges between the clusters, Jaeger holds a
  booking trace with spans from both clusters, Prometheus scrapes the apps.

The booking round trip makes a user, a movie and a booking through the edge
and removes them again. Exit code 1 when any item FAILs, 2 for bad options.

    uv run theater verify [--url URL] [--prometheus-url URL] [--jaeger-url URL] [--kiali-url URL] [--json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from checklist import kube, telemetry
from checklist.doctor import ISTIO_NS, add_common_arguments, finish, parse_set
from checklist.password import demo_auth
from checklist.report import Report, Result, failed, passed, skipped
from checklist.stack import REPO_ROOT, StackError, StackSettings, read
from services import catalog
from services.common.settings import Settings

NS = catalog.NAMESPACE
# The cluster a service names without CLUSTER_NAME (services/common/settings.py), as in `theater local`.
LOCAL_CLUSTER = Settings.__dataclass_fields__["cluster"].default
SIDECAR = "istio-proxy"
APPS = tuple(catalog.SERVICES)
# `<service>@<cluster>/<pod> (<version>)`; answers of older images have no version.
SERVED_BY = re.compile(r"([a-z0-9-]+)@([^/,\s]+)/([^,\s]+)(?:\s*\(([^)]*)\))?")
# Lesson canary: calls sent, and how far the observed v2 share may be from the
# configured weight, in percentage points. 100 calls at a 20% weight have a
# standard deviation of 4 points: 10 is 2.5 of them (about 1 false FAIL in 80 runs).
CANARY_CALLS = 100
CANARY_TOLERANCE = 10
# Lessons abTest and failover: calls sent to see where they go.
ROUTE_CALLS = 20


@dataclass(frozen=True)
class Rollout:
    """One Deployment's replicas as its status reports them."""

    cluster: str
    name: str
    desired: int
    ready: int

    @property
    def shown(self) -> str:
        return f"{self.cluster}:{self.name} 준비 {self.ready}/{self.desired}"


def rollouts(cluster: str, deployments: list[dict], service: str, version: str | None = None) -> list[Rollout]:
    """The Deployments of `service` (of one pod `version` label, or all) in a cluster's list."""
    out = []
    for d in deployments:
        labels = ((d["spec"].get("template") or {}).get("metadata", {}).get("labels") or {})
        if labels.get(catalog.APP_LABEL) != service or (version is not None and labels.get(catalog.VERSION_LABEL) != version):
            continue
        desired = d["spec"].get("replicas")
        out.append(Rollout(cluster, d["metadata"]["name"], 1 if desired is None else int(desired),
                           int((d.get("status") or {}).get("readyReplicas") or 0)))
    return out


def not_ready(found: list[Rollout]) -> list[Rollout]:
    """Deployments asked to run pods that are not all Ready (scaled to 0 is not a fault)."""
    return [r for r in found if r.ready < r.desired]


EXEC_FORMAT_ERROR = "exec format error"


def wrong_platform(pod: dict) -> str | None:
    """The container whose start failed with "exec format error" (an image
    built for another CPU: arm64 from Apple silicon on amd64 nodes), or None.
    runc's failed execve reaches the pod status as a StartError message."""
    status = pod.get("status") or {}
    for c in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        for state in (c.get("state") or {}, c.get("lastState") or {}):
            for detail in state.values():
                if EXEC_FORMAT_ERROR in str((detail or {}).get("message") or "").lower():
                    return c.get("name")
    return None


def served_by(header: str | None) -> list[tuple[str, str, str]]:
    """[(service, cluster, pod), ...] of an X-Served-By header, innermost first."""
    return [(service, cluster, pod) for service, cluster, pod, _ in SERVED_BY.findall(header or "")]


def local_run(chain: list[tuple[str, str, str]]) -> bool:
    """Every service in an X-Served-By chain says it runs in `theater local`
    (cluster "local"): no cluster, so no cross-cluster call to look for."""
    return bool(chain) and all(cluster == LOCAL_CLUSTER for _, cluster, _ in chain)


LOCAL_RUN = "로컬 실행(theater local, 클러스터 'local')이라 클러스터 간 호출이 없어 건너뜀"


def answered(header: str | None, service: str) -> tuple[str, str] | None:
    """(version, cluster) of `service`'s entry in an X-Served-By header; version "" when it has none."""
    return next(((version, cluster) for s, cluster, _, version in SERVED_BY.findall(header or "") if s == service), None)


@dataclass
class Options:
    kubeconfig: str | None = None
    project_dir: Path = REPO_ROOT
    overrides: dict[str, str] = field(default_factory=dict)
    url: str | None = None  # default http://theater.<domain>
    prometheus_url: str | None = None
    jaeger_url: str | None = None
    kiali_url: str | None = None
    timeout: float = 10.0
    skip_kubernetes: bool = False  # only the HTTP and telemetry items (e.g. against the local run)
    write: bool = True  # the booking round trip


class Verify:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.report = Report("verify")
        self.stacks: dict[str, StackSettings] = {}
        self.clusters: dict[str, kube.Cluster] = {}
        self.unreachable: dict[str, str] = {}
        self.http = httpx.Client(timeout=options.timeout, trust_env=False, follow_redirects=False, auth=demo_auth())

    @property
    def ingress(self) -> StackSettings:
        return self.stacks[self.stacks[catalog.CLUSTERS[0]].ingress_cluster]

    @property
    def placement(self) -> dict[str, str]:
        return self.ingress.placement

    def cluster_name(self, stack: str) -> str:
        return self.stacks[stack].cluster

    def add(self, *results: Result) -> None:
        self.report.add(*results)

    # ------------------------------------------------------------ run

    def run(self) -> Report:
        for name in catalog.CLUSTERS:
            self.stacks[name] = read(name, self.o.project_dir, self.o.overrides)
        self.url = (self.o.url or f"http://{self.ingress.host}").rstrip("/")
        self.report.context.update({"url": self.url})
        try:
            if not self.o.skip_kubernetes:
                self.connect()
                self.kubernetes_items()
            self.edge_items()
            self.mesh_items()
            self.lesson_items()
            self.observability_items()
        finally:
            self.http.close()
            for c in self.clusters.values():
                c.close()
        return self.report

    def connect(self) -> None:
        path = kube.kubeconfig_path(self.o.kubeconfig or self.ingress.kubeconfig)
        self.report.context["kubeconfig"] = str(path)
        try:
            config = kube.load(path)
        except kube.KubeError as exc:
            for name in catalog.CLUSTERS:
                self.unreachable[name] = str(exc)
            return
        for name in catalog.CLUSTERS:
            try:
                cluster = kube.Cluster.open(config, name, self.stacks[name].kube_context, self.o.timeout)
                cluster.get("/version")
                self.clusters[name] = cluster
            except kube.KubeError as exc:
                self.unreachable[name] = str(exc)

    def guarded(self, key: str, title: str, cluster_name: str, fn) -> None:
        cluster = self.clusters.get(cluster_name)
        if cluster is None:
            self.add(failed(key, title, f"{cluster_name} 에 연결할 수 없습니다: {self.unreachable.get(cluster_name, '?')}",
                            "uv run theater doctor"))
            return
        try:
            result = fn(cluster)
        except kube.KubeError as exc:
            result = failed(key, title, str(exc))
        result.key, result.title = key, title
        self.add(result)

    # ------------------------------------------------------------ placement and injection

    def kubernetes_items(self) -> None:
        pods = {}
        for name in catalog.CLUSTERS:
            if name in self.clusters:
                try:
                    pods[name] = self.clusters[name].items(f"/api/v1/namespaces/{NS}/pods")
                except kube.KubeError as exc:
                    self.unreachable[name] = str(exc)
        nodes, arch = {}, {}
        for name, cluster in self.clusters.items():
            try:
                listed = cluster.items("/api/v1/nodes")
            except kube.KubeError:
                listed = []
            nodes[name] = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}) for n in listed}
            arch[name] = {n["metadata"]["name"]: ((n.get("status") or {}).get("nodeInfo") or {}).get("architecture", "?")
                          for n in listed}
        for service in APPS:
            self.add(self.placement_item(service, pods, nodes))
        for name in catalog.CLUSTERS:
            self.guarded(f"injection.{name}", f"{name} 네임스페이스 사이드카 주입 레이블", name, self.injection_label)
        for name in catalog.CLUSTERS:
            if name in pods:
                self.add(self.sidecar_item(name, pods[name], arch.get(name)))
            else:
                self.add(failed(f"sidecars.{name}", f"{name} Pod 2/2 (istio-proxy)", f"{name} 에 연결할 수 없습니다: "
                                f"{self.unreachable.get(name, '?')}", "uv run theater doctor"))
        for name in catalog.CLUSTERS:
            self.guarded(f"istio-objects.{name}", f"{name} DestinationRule·PeerAuthentication STRICT", name, self.istio_objects)
        ingress = self.ingress.cluster
        self.guarded("virtualservice", f"{ingress} VirtualService (istio-system)", ingress, self.virtual_service)

    def lesson_clusters(self, service: str, version: str) -> set[str]:
        """Clusters other than the home where a lesson puts pods of `service` at `version`:
        v2Cluster (movie-service v2), failover (movie-service everywhere)."""
        second = catalog.VERSIONS.get(service)
        if second is not None and version == second.version and self.ingress.v2_cluster:
            return {self.ingress.v2_cluster}
        if service == catalog.MOVIE.name and self.ingress.failover:
            return set(catalog.CLUSTERS)
        return set()

    def placement_item(self, service: str, pods: dict[str, list[dict]], nodes: dict[str, dict]) -> Result:
        key, title = f"placement.{service}", f"배치: {service}"
        home = self.placement[service]

        def where_it_belongs(cluster: str, pod: dict) -> bool:
            labels = pod["metadata"].get("labels") or {}
            return labels.get(catalog.APP_LABEL) == service and (
                cluster == home or cluster in self.lesson_clusters(service, labels.get(catalog.VERSION_LABEL, "")))

        lesson_pods = [f"{c}:{p['metadata']['name']}" for c, items in pods.items() if c != home for p in items
                       if where_it_belongs(c, p)]
        pods = {c: [p for p in items if c == home or not where_it_belongs(c, p)] for c, items in pods.items()}
        where = {c: [p for p in items if (p["metadata"].get("labels") or {}).get(catalog.APP_LABEL) == service]
                 for c, items in pods.items()}
        if home not in where:
            return failed(key, title, f"{home} 에 연결할 수 없어 확인하지 못했습니다", "uv run theater doctor")
        here = where[home]
        elsewhere = [f"{c}:{p['metadata']['name']}" for c, items in where.items() if c != home for p in items]
        label = catalog.CLUSTER_LABEL
        wrong_node = [f"{p['metadata']['name']}→{p['spec'].get('nodeName') or '미배정'}" for p in here
                      if nodes.get(home, {}).get(p["spec"].get("nodeName"), {}).get(label) != self.stacks[home].cluster]
        shown = ", ".join(f"{p['metadata']['name']}@{p['spec'].get('nodeName') or '미배정'}" for p in here) or "없음"
        ctx = self.stacks[home].kube_context
        if not here:
            return failed(key, title, f"{home} 에 {service} Pod 가 없습니다", [
                f"kubectl --context {ctx} -n {NS} get deploy,pods -l app={service} -o wide",
                f"pulumi up --stack {home}"])
        if elsewhere:
            return failed(key, title, f"{home} 에만 있어야 하는데 다른 클러스터에도 있음: {', '.join(elsewhere)}",
                          [f"kubectl --context {self.stacks[c.split(':')[0]].kube_context} -n {NS} get pods -l app={service} -o wide"
                           for c in sorted({e.split(':')[0] for e in elsewhere})])
        if wrong_node:
            return failed(key, title, f"{label}={self.stacks[home].cluster} 이 아닌 노드에 있음: {', '.join(wrong_node)}",
                          f"kubectl --context {ctx} label nodes --all {label}={self.stacks[home].cluster} --overwrite")
        also = f" (실습으로 다른 클러스터에도: {', '.join(lesson_pods)})" if lesson_pods else ""
        return passed(key, title, f"{home}: {shown}{also}")

    def injection_label(self, cluster: kube.Cluster) -> Result:
        ns = cluster.get(f"/api/v1/namespaces/{NS}")
        if ns is None:
            return failed("", "", f"네임스페이스 {NS} 가 없습니다", f"pulumi up --stack {cluster.name}")
        labels = ns["metadata"].get("labels") or {}
        if labels.get("istio-injection") == "enabled":
            return passed("", "", "istio-injection=enabled")
        if labels.get("istio.io/rev"):
            return passed("", "", f"istio.io/rev={labels['istio.io/rev']}")
        return failed("", "", f"주입 레이블 없음 (레이블: {labels})", [
            f"kubectl --context {cluster.context} label namespace {NS} istio-injection=enabled --overwrite",
            f"kubectl --context {cluster.context} -n {NS} rollout restart deploy"])

    def sidecar_item(self, name: str, pods: list[dict], node_arch: dict[str, str] | None = None) -> Result:
        key, title = f"sidecars.{name}", f"{name} Pod 2/2 (istio-proxy)"
        mine = [p for p in pods if (p["metadata"].get("labels") or {}).get(catalog.APP_LABEL) in (*APPS, catalog.REDIS.name)]
        if not mine:
            return skipped(key, title, f"{name} 에 앱 Pod 가 없습니다")
        good, bad = [], []
        for p in mine:
            containers = [c["name"] for c in p["spec"].get("containers") or []]
            # Native sidecars (Istio 1.27+ default on new clusters) are init containers that keep running.
            containers += [c["name"] for c in p["spec"].get("initContainers") or [] if c.get("restartPolicy") == "Always"]
            statuses = (p.get("status") or {}).get("containerStatuses") or []
            statuses += [s for s in (p.get("status") or {}).get("initContainerStatuses") or [] if s.get("name") == SIDECAR]
            ready = sum(1 for s in statuses if s.get("ready"))
            phase = (p.get("status") or {}).get("phase")
            shown = f"{p['metadata']['name']} {ready}/{len(containers)} {phase}"
            (good if SIDECAR in containers and ready == len(containers) and phase == "Running" else bad).append(
                shown + ("" if SIDECAR in containers else " (istio-proxy 없음)"))
        foreign = [(p, wrong_platform(p)) for p in mine if wrong_platform(p)]
        if foreign:
            ctx = self.stacks[name].kube_context
            arch = sorted({(node_arch or {}).get(p["spec"].get("nodeName") or "", "?") for p, _ in foreign})
            shown = ", ".join(f"{p['metadata']['name']}/{c}" for p, c in foreign)
            return failed(key, title, f"{shown}: exec format error — 이미지가 노드({'/'.join(arch)})와 다른 CPU 용으로 "
                          f"빌드됨 (Apple silicon 에서 빌드한 arm64 이미지를 amd64 노드에 올린 경우)", [
                              "docker buildx build --platform linux/amd64 --push ...   # README 의 빌드 명령 그대로",
                              "pulumi config set theater-msa:platform linux/amd64 --stack <스택>   # buildImages true 일 때",
                              f"kubectl --context {ctx} get nodes -o custom-columns=NAME:.metadata.name,ARCH:.status.nodeInfo.architecture",
                              f"kubectl --context {ctx} -n {NS} rollout restart deploy   # 다시 푸시한 뒤"])
        if bad:
            ctx = self.stacks[name].kube_context
            return failed(key, title, f"{len(bad)}/{len(mine)}개 문제: {'; '.join(bad)}", [
                f"kubectl --context {ctx} get namespace {NS} --show-labels",
                f"kubectl --context {ctx} -n {NS} rollout restart deploy   # 주입 레이블을 붙인 뒤"])
        return passed(key, title, f"{len(good)}개 모두 2/2 Running: {', '.join(p.split(' ')[0] for p in good)}")

    def istio_objects(self, cluster: kube.Cluster) -> Result:
        networking = self.versions(cluster, "networking.istio.io")
        security = self.versions(cluster, "security.istio.io")
        if not networking or not security:
            return failed("", "", "Istio API 가 없습니다", "uv run theater doctor")
        drs = {d["metadata"]["name"] for d in cluster.items(f"/apis/networking.istio.io/{networking}/namespaces/{NS}/destinationrules")}
        want = {f"{s}-dr" for s in APPS}
        pas = cluster.items(f"/apis/security.istio.io/{security}/namespaces/{NS}/peerauthentications")
        modes = {p["metadata"]["name"]: ((p.get("spec") or {}).get("mtls") or {}).get("mode") for p in pas}
        missing = sorted(want - drs)
        problems = []
        if missing:
            problems.append(f"DestinationRule 없음: {', '.join(missing)}")
        if not modes:
            problems.append("PeerAuthentication 없음")
        elif any(m != "STRICT" for m in modes.values()):
            problems.append(f"STRICT 아님: {modes}")
        evidence = f"DestinationRule {len(drs & want)}/{len(want)}, PeerAuthentication {modes or '없음'}"
        if problems:
            return failed("", "", f"{evidence} — {'; '.join(problems)}", [
                f"kubectl --context {cluster.context} -n {NS} get destinationrule,peerauthentication",
                f"pulumi up --stack {cluster.name}"])
        return passed("", "", evidence)

    def virtual_service(self, cluster: kube.Cluster) -> Result:
        version = self.versions(cluster, "networking.istio.io")
        host, gateway = self.ingress.host, "/".join(self.ingress.ingress_gateway)
        vs = cluster.get(f"/apis/networking.istio.io/{version}/namespaces/{ISTIO_NS}/virtualservices/{NS}") if version else None
        if vs is None:
            elsewhere = cluster.items(f"/apis/networking.istio.io/{version}/namespaces/{NS}/virtualservices") if version else []
            where = f" ({NS} 에 {len(elsewhere)}개 있음: 잘못된 네임스페이스)" if elsewhere else ""
            return failed("", "", f"{ISTIO_NS}/{NS} VirtualService 가 없습니다{where}", [
                f"kubectl --context {cluster.context} get vs -A", f"pulumi up --stack {cluster.name}"])
        spec = vs.get("spec") or {}
        problems = []
        if host not in (spec.get("hosts") or []):
            problems.append(f"hosts {spec.get('hosts')} 에 {host} 없음")
        if gateway not in (spec.get("gateways") or []):
            problems.append(f"gateways {spec.get('gateways')} 에 {gateway} 없음")
        evidence = f"{ISTIO_NS}/{NS}: hosts {spec.get('hosts')}, gateways {spec.get('gateways')}, 라우트 {len(spec.get('http') or [])}개"
        if problems:
            return failed("", "", f"{evidence} — {'; '.join(problems)}",
                          f"pulumi config set theater-msa:domain <도메인> --stack {cluster.name} && pulumi up --stack {cluster.name}")
        return passed("", "", evidence)

    def versions(self, cluster: kube.Cluster, group: str) -> str | None:
        body = cluster.get(f"/apis/{group}") or {}
        return ((body.get("preferredVersion") or {}).get("version")) or None

    # ------------------------------------------------------------ edge routing (HTTP)

    def get(self, path: str, **kw) -> httpx.Response | str:
        """The response, or a Korean sentence saying why there is none."""
        try:
            return self.http.get(self.url + path, **kw)
        except httpx.HTTPError as exc:
            return f"{self.url}{path}: 연결 실패 ({type(exc).__name__}: {exc})"

    def edge_items(self) -> None:
        r = self.get("/healthz")
        key, title = "edge.healthz", f"{self.url} 응답"
        if isinstance(r, str) or r.status_code != 200:
            self.add(failed(key, title, r if isinstance(r, str) else f"/healthz → HTTP {r.status_code}",
                            [f"curl -i {self.url}/healthz", "uv run theater doctor   # DNS, cp-gateway"]))
            self.edge_up = False
        else:
            self.edge_up = True
            self.add(passed(key, title, f"/healthz → 200, X-Served-By {r.headers.get('x-served-by')}"))
        routes = {"": catalog.GATEWAY.name, **{resource: spec.name for resource, spec in catalog.ROUTED.items()}}
        for resource, service in routes.items():
            path = f"/{resource}/?limit=1" if resource else "/"
            key, title = f"edge.route.{resource or 'ui'}", f"라우트 {path.split('?')[0]} → {service}"
            if not self.edge_up:
                self.add(skipped(key, title, "엣지가 응답하지 않아 건너뜀"))
                continue
            r = self.get(path)
            if isinstance(r, str):
                self.add(failed(key, title, r))
                continue
            chain = served_by(r.headers.get("x-served-by"))
            if r.status_code == 200 and chain and chain[0][0] == service:
                self.add(passed(key, title, f"HTTP 200, X-Served-By {r.headers['x-served-by']}"))
            else:
                self.add(failed(key, title, f"HTTP {r.status_code}, X-Served-By {r.headers.get('x-served-by') or '없음'}",
                                [f"curl -si {self.url}{path} | grep -i x-served-by",
                                 f"kubectl --context {self.ingress.kube_context} -n {ISTIO_NS} get vs {NS} -o yaml"]))

    # ------------------------------------------------------------ mesh

    def mesh_items(self) -> None:
        gateway_cluster = self.placement[catalog.GATEWAY.name]
        movie_cluster = self.placement[catalog.MOVIE.name]
        booking_cluster = self.placement[catalog.BOOKING.name]
        user_cluster = self.placement[catalog.USER.name]
        # ctx1 -> ctx2: the gateway (ctx1) proxies to movie-service (ctx2).
        key = "mesh.cross.gateway-movie"
        title = f"클러스터 간 {gateway_cluster}→{movie_cluster} (api-gateway→movie-service)"
        if not self.edge_up:
            self.add(skipped(key, title, "엣지가 응답하지 않아 건너뜀"))
        elif self.ingress.failover and movie_cluster != gateway_cluster:
            self.add(skipped(key, title, f"failover 실습 중: movie-service 가 {gateway_cluster} 에도 있어 자기 클러스터가 "
                                         "먼저 응답합니다 (lessons.failover 참고)"))
        else:
            r = self.get("/movies/?limit=1")
            chain = [] if isinstance(r, str) else served_by(r.headers.get("x-served-by"))
            clusters = {s: c for s, c, _ in chain}
            movie_clusters = {movie_cluster} | ({self.ingress.v2_cluster} if self.ingress.v2_cluster else set())
            if local_run(chain) and r.status_code == 200:
                self.add(skipped(key, title, f"X-Served-By {r.headers['x-served-by']}: {LOCAL_RUN}"))
            elif clusters.get("movie-service") in movie_clusters and clusters.get("api-gateway") == gateway_cluster:
                self.add(passed(key, title, f"X-Served-By {r.headers['x-served-by']}"))
            else:
                self.add(failed(key, title, r if isinstance(r, str) else
                                f"X-Served-By {r.headers.get('x-served-by') or '없음'} (기대: movie-service@{movie_cluster}, "
                                f"api-gateway@{gateway_cluster})", "uv run theater doctor   # east-west 게이트웨이, 원격 시크릿"))
        self.booking_round_trip(booking_cluster, user_cluster)
        self.prometheus_items(gateway_cluster, movie_cluster, booking_cluster, user_cluster)

    def booking_round_trip(self, booking_cluster: str, user_cluster: str) -> None:
        key = "mesh.cross.booking-user"
        title = f"클러스터 간 {booking_cluster}→{user_cluster} (booking-service→user-service)"
        if not self.edge_up or not self.o.write:
            self.add(skipped(key, title, "엣지가 응답하지 않아 건너뜀" if self.o.write else "--no-write: 예약을 만들지 않음"))
            return
        tag = uuid.uuid4().hex[:8]
        made: list[str] = []
        try:
            # Named with catalog.VERIFY_NAME_PREFIX: the web page hides them and the cancelled booking.
            user = self.http.post(f"{self.url}/users/", json={"name": f"{catalog.VERIFY_NAME_PREFIX}{tag}", "email": f"verify-{tag}@example.com"})
            movie = self.http.post(f"{self.url}/movies/", json={"title": f"{catalog.VERIFY_NAME_PREFIX}{tag}", "genre": "test", "year": 2026,
                                                               "capacity": 1})
            if user.status_code != 201 or movie.status_code != 201:
                self.add(failed(key, title, f"준비 실패: POST /users/ {user.status_code}, POST /movies/ {movie.status_code}"))
                return
            made += [f"/users/{user.json()['id']}", f"/movies/{movie.json()['id']}"]
            self.trace_id = uuid.uuid4().hex
            booking = self.http.post(f"{self.url}/bookings/", headers={"Idempotency-Key": f"verify-{tag}",
                                     "x-request-id": f"theater-verify-{tag}"},
                                     json={"userId": user.json()["id"], "movieId": movie.json()["id"], "seats": 1})
            chain = served_by(booking.headers.get("x-served-by"))
            clusters = {s: c for s, c, _ in chain}
            if booking.status_code == 201:
                made.insert(0, f"/bookings/{booking.json()['id']}")
            evidence = f"POST /bookings/ → {booking.status_code}, X-Served-By {booking.headers.get('x-served-by') or '없음'}"
            if booking.status_code == 201 and local_run(chain):
                self.add(skipped(key, title, f"{evidence}: {LOCAL_RUN}"))
            elif booking.status_code == 201 and clusters.get("booking-service") == booking_cluster:
                self.add(passed(key, title, evidence + f" (user-service 는 {user_cluster} 에만 있음)"))
            else:
                self.add(failed(key, title, evidence + ("" if booking.status_code == 201 else f" — 본문: {booking.text[:160]}"),
                                "uv run theater doctor   # east-west 게이트웨이, 원격 시크릿, 루트 CA"))
        except httpx.HTTPError as exc:
            self.add(failed(key, title, f"요청 실패: {type(exc).__name__}: {exc}"))
        finally:
            for path in made:  # leave nothing behind
                try:
                    self.http.delete(self.url + path)
                except httpx.HTTPError:
                    pass

    def endpoint(self, tool: str) -> telemetry.Endpoint | None:
        given = {"prometheus": self.o.prometheus_url, "jaeger": self.o.jaeger_url, "kiali": self.o.kiali_url}[tool]
        if given:
            return telemetry.url_endpoint(tool, given, self.o.timeout)
        order = [self.ingress.cluster] + [c for c in catalog.CLUSTERS if c != self.ingress.cluster]
        for name in order:
            if name in self.clusters:
                try:
                    found = telemetry.discover(tool, self.clusters[name])
                except kube.KubeError:
                    continue
                if found:
                    return found
        return None

    def prometheus_items(self, gateway_cluster: str, movie_cluster: str, booking_cluster: str, user_cluster: str) -> None:
        prom = self.endpoint("prometheus")
        items = [
            ("mesh.mtls", "mTLS 사용 (istio_requests_total)",
             f'sum by (source_workload, destination_service_name) (istio_requests_total{{reporter="destination", '
             f'destination_service_namespace="{NS}", connection_security_policy="mutual_tls"}})'),
            ("mesh.prometheus.gateway-movie", f"Prometheus {gateway_cluster}→{movie_cluster} movie-service",
             f'sum(istio_requests_total{{source_cluster="{gateway_cluster}", destination_cluster="{movie_cluster}", '
             f'destination_service_name="movie-service"}})'),
            ("mesh.prometheus.booking-user", f"Prometheus {booking_cluster}→{user_cluster} user-service",
             f'sum(istio_requests_total{{source_cluster="{booking_cluster}", destination_cluster="{user_cluster}", '
             f'destination_service_name="user-service"}})'),
            ("observability.prometheus.apps", "Prometheus 가 앱 메트릭 수집",
             f'sum by (service) (http_requests_total{{service=~"{"|".join(APPS)}"}})'),
        ]
        for key, title, query in items:
            if prom is None:
                self.add(skipped(key, title, "Prometheus 를 찾지 못함 (istio-system/prometheus 또는 --prometheus-url)"))
                continue
            try:
                vector = telemetry.prom_query(prom, query)
            except (telemetry.TelemetryError, kube.KubeError, ValueError, KeyError) as exc:
                self.add(failed(key, title, f"{prom.where}: {exc}"))
                continue
            nonzero = [s for s in vector if s["value"] > 0]
            if key == "observability.prometheus.apps":
                seen = sorted(s["metric"].get("service", "?") for s in nonzero)
                missing = [a for a in APPS if a not in seen]
                if missing:
                    self.add(failed(key, title, f"{prom.where}: 메트릭 없는 서비스 {', '.join(missing)} (있음: {', '.join(seen) or '없음'})",
                                    f"kubectl --context {self.ingress.kube_context} -n {NS} get pods -o jsonpath="
                                    "'{.items[*].metadata.annotations.prometheus\\.io/scrape}'"))
                else:
                    self.add(passed(key, title, f"{prom.where}: http_requests_total 을 {', '.join(seen)} 에서 수집"))
                continue
            if nonzero:
                shown = "; ".join(describe(s) for s in nonzero[:4])
                self.add(passed(key, title, f"{prom.where}: {shown}"))
            else:
                self.add(failed(key, title, f"{prom.where}: 시계열 없음 (쿼리: {query})",
                                ["uv run theater load --stack ctx1 --duration 60   # 트래픽을 만든 뒤 다시 확인"]))

    # ------------------------------------------------------------ lessons

    def lesson_items(self) -> None:
        self.toggle_items()
        self.version_lesson_items()

    def toggle_items(self) -> None:
        toggles = []
        for stack in self.stacks.values():
            for key in ("faults", "tightCircuitBreaking"):
                value = stack.text(key)
                if value and value not in ("[]", "{}"):
                    toggles.append((stack.stack, key, value))
        if not toggles:
            self.add(skipped("lessons", "실습 토글 (장애 주입·서킷 브레이커)",
                             "켜진 실습 토글 없음 (README 5.1: theater-msa:faults, tightCircuitBreaking)"))
            return
        if not self.edge_up:
            self.add(skipped("lessons", "실습 토글", "엣지가 응답하지 않아 건너뜀"))
            return
        seen = set()
        for _stack, key, value in toggles:
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = [v.strip() for v in value.split(",")]
            if key == "faults":
                for service, fault in parsed.items():
                    if ("fault", service) not in seen:
                        seen.add(("fault", service))
                        self.add(self.observe_fault(service, fault))
            else:
                for service in parsed:
                    if ("cb", service) not in seen:
                        seen.add(("cb", service))
                        self.add(self.observe_circuit_breaker(service))

    def version_lesson_items(self) -> None:
        """canary, abTest and failover, as the edge (the ingress cluster's stack) has them."""
        st = self.ingress
        try:
            canary, ab = st.json_value("canary"), st.json_value("abTest")
        except StackError as exc:
            self.add(failed("lessons.canary", "실습: 카나리·A/B", str(exc)))
            return
        wanted = [("lessons.canary", "실습: 카나리 가중치", canary), ("lessons.ab", "실습: A/B (헤더·쿠키로 v2)", ab),
                  ("lessons.failover", "실습: 장애 조치·자기 클러스터 우선", st.failover)]
        for key, title, on in wanted:
            if on and not self.edge_up:
                self.add(skipped(key, title, "엣지가 응답하지 않아 건너뜀"))
            elif on:
                self.add(self.observe_canary(canary) if key == "lessons.canary"
                         else self.observe_ab(ab, canary) if key == "lessons.ab" else self.observe_failover())

    def movie_answers(self, n: int, headers: dict[str, str] | None = None) -> tuple[Counter, Counter]:
        """n GET /movies/ through the edge: (version, cluster) of each answer, and the failures."""
        seen, errors = Counter(), Counter()
        for _ in range(n):
            r = self.get("/movies/?limit=1", headers=headers or {})
            who = None if isinstance(r, str) else answered(r.headers.get("x-served-by"), catalog.MOVIE.name)
            if isinstance(r, str) or r.status_code != 200 or who is None:
                errors["error" if isinstance(r, str) else r.status_code] += 1
            else:
                seen[who] += 1
        return seen, errors

    def movie_rollouts(self, version: str | None = None) -> list[Rollout] | None:
        """movie-service's Deployments (of one version, or all) in every cluster; None
        when Kubernetes is not read (--no-kubernetes) or a cluster cannot be."""
        if len(self.clusters) < len(catalog.CLUSTERS):
            return None
        found: list[Rollout] = []
        for name, cluster in self.clusters.items():
            try:
                found += rollouts(name, cluster.items(f"/apis/apps/v1/namespaces/{NS}/deployments"), catalog.MOVIE.name, version)
            except kube.KubeError:
                return None
        return found

    def pods_fix(self, found: list[Rollout]) -> list[str]:
        fixes = []
        for r in found:
            ctx = self.stacks[r.cluster].kube_context if r.cluster in self.stacks else r.cluster
            fixes += [f"kubectl --context {ctx} -n {NS} get pods -l app={catalog.MOVIE.name} -o wide",
                      f"kubectl --context {ctx} -n {NS} describe deploy {r.name} | tail -20",
                      f"kubectl --context {ctx} -n {NS} logs deploy/{r.name} -c {catalog.MOVIE.name} --tail 20"]
        return fixes

    def v2_not_ready(self, key: str, title: str) -> Result | None:
        """FAIL when movie-service v2 is not running Ready where v2Cluster says:
        traffic the lesson sends it then ends in "no healthy upstream"."""
        v2 = self.movie_rollouts(catalog.MOVIE_V2.version)
        if v2 is None:
            return None
        where = self.ingress.v2_cluster
        if not v2 or not any(r.desired > 0 for r in v2):
            return failed(key, title, f"{where} 에 movie-service {catalog.MOVIE_V2.version} Deployment 가 없거나 0개로 "
                          f"줄어 있음", [f"pulumi config get theater-msa:v2Cluster --stack {s}" for s in catalog.CLUSTERS]
                          + [f"pulumi up --stack {where}"])
        if not_ready(v2):
            return failed(key, title, "v2 Pod 가 Ready 가 아님: " + ", ".join(r.shown for r in not_ready(v2))
                          + " (집 클러스터의 Redis 에 닿지 못하면 /readyz 가 503)", self.pods_fix(not_ready(v2)))
        return None

    def observe_canary(self, weights: dict) -> Result:
        v2 = catalog.MOVIE_V2.version
        key, title = "lessons.canary", f"실습: 카나리 {' / '.join(f'{k} {v}' for k, v in weights.items())}"
        problem = self.v2_not_ready(key, title)
        if problem is not None:
            return problem
        seen, errors = self.movie_answers(CANARY_CALLS)
        total = sum(seen.values())
        by_version = Counter()
        for (version, _), n in seen.items():
            by_version[version] += n
        share = 100 * by_version[v2] / total if total else 0.0
        expected = float(weights.get(v2, 0))
        evidence = (f"GET /movies/ {CANARY_CALLS}회: " + ", ".join(f"{v or '버전 없음'} {n}회" for v, n in sorted(by_version.items()))
                    + (f", 실패 {dict(errors)}" if errors else "")
                    + f" → {v2} {share:.0f}% (설정 {expected:.0f}%, 허용 ±{CANARY_TOLERANCE}%p)")
        if total >= CANARY_CALLS * 0.9 and abs(share - expected) <= CANARY_TOLERANCE:
            return passed(key, title, evidence)
        ctx = self.ingress.kube_context
        return failed(key, title, evidence, [
            f"kubectl --context {ctx} -n {NS} get dr movie-service-dr -o yaml   # subsets v1, v2",
            f"kubectl --context {ctx} -n {ISTIO_NS} get vs {NS} -o yaml | grep -B2 -A3 weight",
            f"kubectl --context {self.stacks[self.ingress.v2_cluster].kube_context if self.ingress.v2_cluster in self.stacks else ctx} "
            f"-n {NS} get pods -l app=movie-service,version={v2}"])

    def observe_ab(self, ab: dict, canary: dict) -> Result:
        v2 = catalog.MOVIE_V2.version
        key, title = "lessons.ab", "실습: A/B (헤더·쿠키로 v2)"
        problem = self.v2_not_ready(key, title)
        if problem is not None:
            return problem
        if "header" in ab:
            chosen, shown = {str(ab["header"]): str(ab.get("value", ""))}, f"{ab['header']}: {ab.get('value')}"
        else:
            chosen, shown = {"cookie": f"{ab.get('cookie')}={ab.get('value')}"}, f"Cookie {ab.get('cookie')}={ab.get('value')}"
        seen, errors = self.movie_answers(ROUTE_CALLS, chosen)
        others, other_errors = self.movie_answers(ROUTE_CALLS)
        to_v2 = sum(n for (version, _), n in seen.items() if version == v2)
        others_v2 = sum(n for (version, _), n in others.items() if version == v2)
        evidence = f"{shown} 를 붙인 {ROUTE_CALLS}회 중 {v2} {to_v2}회; 안 붙인 {ROUTE_CALLS}회 중 {v2} {others_v2}회"
        if errors or other_errors:
            evidence += f" (실패 {dict(errors + other_errors)})"
        # Without canary weights everyone else gets v1; with them, the weights decide (lessons.canary).
        if to_v2 == ROUTE_CALLS and (canary or others_v2 == 0):
            return passed(key, title, evidence)
        return failed(key, title, evidence, [
            f"kubectl --context {self.ingress.kube_context} -n {ISTIO_NS} get vs {NS} -o yaml | grep -B3 -A8 headers",
            f"curl -s -o /dev/null -D - -H '{shown}' {self.url}/movies/ | grep -i x-served-by"
            if "header" in ab else f"curl -s -o /dev/null -D - -b '{ab.get('cookie')}={ab.get('value')}' {self.url}/movies/ | grep -i x-served-by"])

    def observe_failover(self) -> Result:
        """The edge (the ingress cluster's gateway) prefers movie-service in its own
        cluster; when that is scaled to 0 (the lesson's step), the other cluster
        answers. Every copy asked to run must be Ready: a copy that is not (say,
        one that cannot reach its home's Redis) is a fault, not a failover."""
        key, title = "lessons.failover", "실습: 장애 조치·자기 클러스터 우선"
        local = self.ingress.cluster
        found = self.movie_rollouts()
        if found is None:
            expected, why = {local}, "쿠버네티스를 읽지 않아 준비 상태는 모름"
        else:
            broken = not_ready(found)
            if broken:
                return failed(key, title, "movie-service Pod 가 Ready 가 아님: " + ", ".join(r.shown for r in broken)
                              + " (장애 조치 실습은 0개로 줄인 쪽만 빠져야 함)", self.pods_fix(broken))
            desired_here = sum(r.desired for r in found if r.cluster == local)
            if not any(r.ready for r in found):
                return failed(key, title, "어느 클러스터에도 준비된 movie-service Pod 가 없음: "
                              + (", ".join(r.shown for r in found) or "Deployment 없음"), self.pods_fix(found))
            expected = {local} if desired_here else set(catalog.CLUSTERS) - {local}
            why = (f"{local} 의 movie-service " + ", ".join(r.shown for r in found if r.cluster == local) + " → "
                   + ("자기 클러스터 우선" if desired_here else "0개로 줄임: 다른 클러스터로 장애 조치"))
        seen, errors = self.movie_answers(ROUTE_CALLS)
        clusters = Counter()
        for (_, cluster), n in seen.items():
            clusters[cluster] += n
        evidence = (f"GET /movies/ {ROUTE_CALLS}회: " + ", ".join(f"{c} {n}회" for c, n in sorted(clusters.items()))
                    + (f", 실패 {dict(errors)}" if errors else "") + f" ({why}; 기대: {', '.join(sorted(expected))})")
        if clusters and set(clusters) <= expected and not errors:
            return passed(key, title, evidence)
        ctx = self.ingress.kube_context
        return failed(key, title, evidence, [
            f"kubectl --context {ctx} -n {NS} get dr movie-service-dr -o yaml | grep -A6 localityLbSetting",
            f"istioctl --context {ctx} proxy-config endpoints deploy/istio-ingressgateway.{ISTIO_NS} "
            f"--cluster 'outbound|{catalog.MOVIE.port}||movie-service.{NS}.svc.cluster.local'"])

    def route_of(self, service: str) -> str | None:
        return next((f"/{r}/?limit=1" for r, s in catalog.ROUTED.items() if s.name == service), None)

    def observe_fault(self, service: str, fault: dict) -> Result:
        key, title = f"lessons.fault.{service}", f"실습: {service} 장애 주입"
        path = self.route_of(service)
        if path is None:
            return skipped(key, title, f"{service} 는 엣지 라우트가 없음")
        codes, slow = Counter(), 0
        delay = parse_seconds(fault.get("delay")) if fault.get("delay") else None
        for _ in range(20):
            started = time.monotonic()
            r = self.get(path, timeout=(delay or 0) + self.o.timeout)
            codes["error" if isinstance(r, str) else r.status_code] += 1
            if delay and time.monotonic() - started >= delay * 0.9:
                slow += 1
        evidence = f"20회 {path.split('?')[0]}: {dict(codes)}" + (f", {delay:g}s 이상 {slow}회" if delay else "")
        seen_abort = fault.get("abort") and codes.get(int(fault["abort"]), 0) > 0
        if seen_abort or (delay and slow):
            return passed(key, title, evidence)
        return failed(key, title, evidence + f" — 설정 {fault} 의 효과가 보이지 않음",
                      f"kubectl --context {self.ingress.kube_context} get vs -A -o yaml | grep -A5 fault")

    def observe_circuit_breaker(self, service: str) -> Result:
        key, title = f"lessons.circuit-breaker.{service}", f"실습: {service} 서킷 브레이커"
        path = self.route_of(service)
        if path is None:
            return skipped(key, title, f"{service} 는 엣지 라우트가 없음")
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda _: self.get(path), range(60)))
        codes = Counter("error" if isinstance(a, str) else a.status_code for a in answers)
        overloaded = sum(1 for a in answers if not isinstance(a, str) and a.headers.get("x-envoy-overloaded") == "true")
        evidence = f"동시 60회 {path.split('?')[0]}: {dict(codes)}, x-envoy-overloaded {overloaded}회"
        if overloaded or codes.get(503):
            return passed(key, title, evidence)
        return failed(key, title, evidence + " — 연결 풀이 넘치지 않았습니다",
                      f"kubectl --context {self.ingress.kube_context} -n {NS} get dr {service}-dr -o yaml")

    # ------------------------------------------------------------ observability

    def observability_items(self) -> None:
        kiali = self.endpoint("kiali")
        key, title = "observability.kiali", "Kiali 그래프의 클러스터 간 간선"
        if kiali is None:
            self.add(skipped(key, title, "Kiali 를 찾지 못함 (istio-system/kiali 또는 --kiali-url)"))
        else:
            try:
                crossing, total = telemetry.kiali_cross_cluster_edges(kiali, NS)
                if crossing:
                    self.add(passed(key, title, f"{kiali.where}: 간선 {total}개 중 클러스터 간 {len(crossing)}개: {'; '.join(crossing[:4])}"))
                else:
                    self.add(failed(key, title, f"{kiali.where}: 간선 {total}개, 클러스터 간 간선 없음",
                                    "uv run theater load --stack ctx1 --duration 120   # 트래픽을 만든 뒤 다시 확인"))
            except (telemetry.TelemetryError, kube.KubeError, ValueError, KeyError) as exc:
                self.add(failed(key, title, f"{kiali.where}: {exc}"))
        self.jaeger_item()

    def jaeger_item(self) -> None:
        key, title = "observability.jaeger", "Jaeger: 두 클러스터에 걸친 예약 trace"
        jaeger = self.endpoint("jaeger")
        if jaeger is None:
            self.add(skipped(key, title, "Jaeger 를 찾지 못함 (istio-system/tracing 또는 --jaeger-url)"))
            return
        cluster_of = {name: self.placement[name] for name in APPS}
        try:
            traces = []
            for service in (f"{catalog.BOOKING.name}.{NS}", catalog.BOOKING.name):
                traces = telemetry.jaeger_traces(jaeger, service)
                if traces:
                    break
        except (telemetry.TelemetryError, kube.KubeError, ValueError, KeyError) as exc:
            self.add(failed(key, title, f"{jaeger.where}: {exc}"))
            return
        for trace in traces:
            clusters = telemetry.span_clusters(trace, cluster_of.get)
            if len(clusters) >= 2:
                shown = "; ".join(f"{c}: {', '.join(sorted(s))}" for c, s in sorted(clusters.items()))
                self.add(passed(key, title, f"{jaeger.where}: trace {trace.get('traceID')} 스팬 {len(trace.get('spans') or [])}개 ({shown})"))
                return
        self.add(failed(key, title, f"{jaeger.where}: booking-service trace {len(traces)}개, 두 클러스터에 걸친 것 없음",
                        "uv run theater load --stack ctx1 --duration 60 --mix bookings=1   # 예약을 만든 뒤 다시 확인"))


def describe(sample: dict) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(sample["metric"].items()) if k != "__name__")
    return f"{{{labels}}} {sample['value']:g}" if labels else f"요청 {sample['value']:g}건"


def parse_seconds(text: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--url", help="앱 주소 (기본: http://theater.<domain>)")
    parser.add_argument("--prometheus-url", help="Prometheus 주소 (기본: API 서버를 거쳐 istio-system/prometheus)")
    parser.add_argument("--jaeger-url", help="Jaeger query 주소 (기본: API 서버를 거쳐 istio-system/tracing)")
    parser.add_argument("--kiali-url", help="Kiali 주소와 웹 루트, 예: http://127.0.0.1:20001/kiali "
                                            "(기본: API 서버를 거쳐 istio-system/kiali)")
    parser.add_argument("--no-kubernetes", action="store_true",
                        help="Kubernetes 항목 없이 HTTP·관측 항목만 (예: 로컬 실행, --url http://127.0.0.1:8080)")
    parser.add_argument("--no-write", action="store_true", help="예약 왕복을 건너뜀 (테스트 데이터를 만들고 지우는 항목)")


def main(args: argparse.Namespace) -> int:
    try:
        options = Options(args.kubeconfig, args.project_dir, parse_set(args.set), args.url, args.prometheus_url,
                          args.jaeger_url, args.kiali_url, max(args.timeout, 1.0), args.no_kubernetes, not args.no_write)
        report = Verify(options).run()
    except (ValueError, StackError) as exc:
        print(f"theater verify: {exc}", file=sys.stderr)
        return 2
    return finish(report, args.json)
