"""Deployment status of both clusters, read from the Kubernetes API.

The api-gateway's GET /api/status answers with `StatusReader.status()`:

    {"namespace": "theater-msa",
     "mode": "kubernetes" | "local",
     "generatedAt": "...Z",
     "clusters": [ {"name": "ctx1", "role": "local", "source": "in-cluster", "server": "https://...",
                    "reachable": true, "error": null, "reason": null, "forbidden": [],
                    "nodes": [...], "deployments": [...], "pods": [...], "elapsedMs": 12}, ... ],
     "local": [ {"service", "url", "healthy", "ready", "info", "error"}, ... ] | null}

Where each cluster's API comes from:

* its own cluster (`role: "local"`): LOCAL_KUBECONFIG when set (out-of-cluster
  runs, tests), else the pod's ServiceAccount (in-cluster config, detected by
  KUBERNETES_SERVICE_HOST), else `source: "none"`;
* the other cluster (`role: "remote"`): the kubeconfig at REMOTE_KUBECONFIG (a
  file, or a directory such as a mounted Secret), else the Secret's default
  mount point `catalog.REMOTE_KUBECONFIG_DIR` if it holds one, else
  `source: "none"` with reason not_configured (also when REMOTE_KUBECONFIG
  names a file that is not there: the Deployment always sets it, and the
  Secret behind it is optional until the other cluster is connected). The
  path is looked at on every fetch, so a Secret mounted later is picked up
  without a restart.

A kubeconfig with a context named after the cluster (ctx1/ctx2) uses that
context, otherwise its current context: so one ~/.kube/config holding both
contexts can serve as LOCAL_KUBECONFIG and REMOTE_KUBECONFIG at once.

`mode` is "local" when no cluster is configured at all (not in a pod, no
LOCAL_KUBECONFIG, no remote kubeconfig): the laptop run of `theater local`.
That is not a failure, and the web UI says so instead of showing two
unreachable clusters; the clusters are still listed, with their reasons.

Failures never raise: each cluster reports `reachable`, a `reason` code
(not_configured, not_in_cluster, config_error, forbidden, unauthorized,
unreachable, timeout, error) and an English `error` sentence; 403s name the
RBAC permission that is missing. Every cluster query has a deadline
(`k8s_timeout`), and an answer is reused for `status_cache_seconds`, with
one fetch in flight at a time however many browsers ask.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
from lightkube import AsyncClient, ConfigError, KubeConfig
from lightkube.core.exceptions import ApiError as KubeApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, Pod

from services import catalog
from services.common.peers import HttpClient, Reply
from services.common.settings import Settings

# What the status page lists: (key in the JSON, lightkube resource, API path, namespaced?)
RESOURCES: tuple[tuple[str, Any, str, bool], ...] = (
    ("nodes", Node, "/api/v1/nodes", False),
    ("deployments", Deployment, "/apis/apps/v1/namespaces/{ns}/deployments", True),
    ("pods", Pod, "/api/v1/namespaces/{ns}/pods", True),
)
# Kubeconfig file names looked for when REMOTE_KUBECONFIG names a directory.
KUBECONFIG_NAMES = ("kubeconfig", "config", "kubeconfig.yaml", "config.yaml")


# Where Kubernetes mounts a pod's service-account token (lightkube reads it there).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


# ---------------------------------------------------------------- summaries


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


# ---------------------------------------------------------------- errors


def _forbidden_message(resource: str, namespaced: bool, namespace: str, server_message: str) -> str:
    where = f"in namespace {namespace} (Role + RoleBinding)" if namespaced else "at cluster scope (ClusterRole + ClusterRoleBinding)"
    group = "apps" if resource == "deployments" else '"" (core)'
    return f"RBAC: missing permission to list {resource} (API group {group}) {where}. Kubernetes said: {server_message}"


def classify(exc: BaseException, resource: str, namespaced: bool, namespace: str) -> tuple[str, str, bool]:
    """(reason, message, answered) for a failed list call; `answered` means
    the API server sent an HTTP response (so it is reachable)."""
    if isinstance(exc, KubeApiError):
        code = exc.status.code if exc.status and exc.status.code else exc.response.status_code
        message = (exc.status.message if exc.status else None) or str(exc)
        if code == 403:
            return "forbidden", _forbidden_message(resource, namespaced, namespace, message), True
        if code == 401:
            return "unauthorized", f"the API server rejected the credentials (401): {message}", True
        return "error", f"listing {resource} failed with HTTP {code}: {message}", True
    if isinstance(exc, httpx2.HTTPStatusError):
        code = exc.response.status_code
        if code == 403:
            return "forbidden", _forbidden_message(resource, namespaced, namespace, exc.response.text[:200]), True
        return "error", f"listing {resource} failed with HTTP {code}", True
    if isinstance(exc, (TimeoutError, httpx2.TimeoutException)):
        return "timeout", "the API server did not answer in time", False
    if isinstance(exc, httpx2.TransportError):
        return "unreachable", f"cannot connect to the API server ({type(exc).__name__}: {exc})", False
    if isinstance(exc, ConfigError):
        return "config_error", f"kubeconfig problem: {exc}", False
    return "error", f"{type(exc).__name__}: {exc}", False


# ---------------------------------------------------------------- sources


def find_kubeconfig(path: Path) -> Path | None:
    """`path` itself if it is a file; in a directory (a mounted Secret) the
    first known kubeconfig name, else its only regular file."""
    if path.is_file():
        return path
    if not path.is_dir():
        return None
    for name in KUBECONFIG_NAMES:
        if (path / name).is_file():
            return path / name
    files = sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.is_file())
    return files[0] if len(files) == 1 else None


def load_kubeconfig(path: Path, context: str) -> Any:
    """The SingleConfig for `context` if the file has it, else its current context."""
    config = KubeConfig.from_file(path)
    single = config.get(context_name=context) if context in config.contexts else config.get()
    if single is None:
        raise ConfigError(f"{path} has no current-context and no context named {context!r}")
    return single


class ClusterSource:
    """How one cluster's API is reached; `describe()` says so for the JSON."""

    def __init__(self, name: str, role: str, kind: str, path: Path | None = None, why_none: str = "") -> None:
        self.name = name
        self.role = role  # "local" (the gateway's own cluster) or "remote"
        self.kind = kind  # "in-cluster", "kubeconfig" or "none"
        self.path = path
        self.why_none = why_none

    def config(self) -> Any:
        if self.kind == "in-cluster":
            return KubeConfig.from_service_account()
        assert self.path is not None
        found = find_kubeconfig(self.path)
        if found is None:
            raise ConfigError(f"no kubeconfig file at {self.path}")
        return load_kubeconfig(found, self.name)

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes when the credentials behind this source change: a new
        kubeconfig Secret mounted, a rotated service-account token."""
        if self.kind == "in-cluster":
            watched: Path | None = Path(SERVICE_ACCOUNT_DIR) / "token"
        else:
            watched = find_kubeconfig(self.path) if self.path is not None else None
        try:
            st = watched.stat() if watched is not None else None
        except OSError:
            st = None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino) if st is not None else None
        return (self.name, self.kind, str(watched), stamp)


class ClusterClients:
    """One lightkube client per cluster, kept while its credentials do not
    change. Building a client loads the CA bundle: 80 ms of CPU on a calm
    machine and over a second on a busy one. Built on every status poll and
    on the event loop, it stalled the gateway's other calls (a who-answered
    /info call timed out connecting to 127.0.0.1), so clients are built in a
    worker thread and reused."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], tuple[tuple[Any, ...], str, Any]] = {}

    async def get(self, source: ClusterSource, namespace: str, timeout: float) -> tuple[str, Any]:
        """(API server URL, client) for `source`; raises on a bad kubeconfig."""
        fingerprint = (*source.fingerprint(), namespace, timeout)
        key = (source.name, source.role)
        cached = self._clients.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1], cached[2]

        def build() -> tuple[str, Any]:
            config = source.config()
            client = AsyncClient(
                config,
                namespace=namespace,
                timeout=httpx2.Timeout(timeout, connect=min(timeout, 2.0)),
                trust_env=False,  # never pick up the host's KUBECONFIG/proxy settings by accident
            )
            return config.cluster.server, client

        server, client = await asyncio.to_thread(build)
        if cached is not None:
            await _close_quietly(cached[2])
        self._clients[key] = (fingerprint, server, client)
        return server, client

    async def aclose(self) -> None:
        for _, _, client in self._clients.values():
            await _close_quietly(client)
        self._clients.clear()


async def _close_quietly(client: Any) -> None:
    try:
        await client.close()
    except Exception:  # pragma: no cover - closing never matters for the answer
        pass


def cluster_sources(settings: Settings, environ: dict[str, str] | os._Environ[str] | None = None) -> list[ClusterSource]:
    env = os.environ if environ is None else environ
    own = settings.cluster if settings.cluster in catalog.CLUSTERS else catalog.CLUSTERS[0]
    remote = settings.remote_cluster or next(c for c in catalog.CLUSTERS if c != own)

    if settings.local_kubeconfig is not None:
        local = ClusterSource(own, "local", "kubeconfig", settings.local_kubeconfig)
    elif env.get("KUBERNETES_SERVICE_HOST"):
        local = ClusterSource(own, "local", "in-cluster")
    else:
        local = ClusterSource(
            own,
            "local",
            "none",
            why_none="not running in Kubernetes (no KUBERNETES_SERVICE_HOST) and LOCAL_KUBECONFIG is not set",
        )

    remote_path = settings.remote_kubeconfig
    if remote_path is None and find_kubeconfig(Path(catalog.REMOTE_KUBECONFIG_DIR)) is not None:
        remote_path = Path(catalog.REMOTE_KUBECONFIG_DIR)
    if remote_path is not None and find_kubeconfig(remote_path) is None:
        # Kubernetes always sets REMOTE_KUBECONFIG; the Secret behind it is
        # optional and absent until the other cluster is connected.
        other = ClusterSource(
            remote,
            "remote",
            "none",
            why_none=f"no kubeconfig at {remote_path} (REMOTE_KUBECONFIG): the optional Secret is not mounted yet",
        )
    elif remote_path is not None:
        other = ClusterSource(remote, "remote", "kubeconfig", remote_path)
    else:
        other = ClusterSource(
            remote,
            "remote",
            "none",
            why_none=f"no kubeconfig for the remote cluster: set REMOTE_KUBECONFIG or mount one at {catalog.REMOTE_KUBECONFIG_DIR}",
        )
    order = {name: i for i, name in enumerate(catalog.CLUSTERS)}
    return sorted([local, other], key=lambda s: order.get(s.name, len(order)))


# ---------------------------------------------------------------- reading


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
            asyncio.gather(*(fetch(res, nsd) for _, res, _, nsd in RESOURCES), return_exceptions=True),
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
    for (key, _, _, namespaced), result in zip(RESOURCES, results, strict=True):
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


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "cannot connect"
    return type(exc).__name__


async def probe_service(client: HttpClient, name: str, url: str, timeout: float) -> dict[str, Any]:
    """/info, /healthz and /readyz of one service, for the local run's panel."""
    entry: dict[str, Any] = {"service": name, "url": url, "healthy": False, "ready": False, "info": None, "error": None}

    async def get(path: str) -> Reply:
        return await client.request("GET", url + path, timeout=timeout)

    results = await asyncio.gather(get("/info"), get("/healthz"), get("/readyz"), return_exceptions=True)
    info, health, ready = results
    problems = []
    for what, res in (("info", info), ("healthz", health), ("readyz", ready)):
        if isinstance(res, BaseException):
            problems.append(f"{what}: {_failure(res)}")
    if isinstance(info, Reply) and info.status_code == 200:
        try:
            entry["info"] = info.json()
        except ValueError:
            problems.append("info: not JSON")
    if isinstance(health, Reply):
        entry["healthy"] = health.status_code == 200
    if isinstance(ready, Reply):
        entry["ready"] = ready.status_code == 200
        if ready.status_code != 200:
            try:
                problems.append(ready.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                problems.append(f"readyz: HTTP {ready.status_code}")
    if problems:
        entry["error"] = "; ".join(dict.fromkeys(problems))
    return entry


class StatusReader:
    """Builds the /api/status answer, cached for `settings.status_cache_seconds`."""

    def __init__(
        self,
        settings: Settings,
        http: HttpClient,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.environ = environ
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0
        self._lock = asyncio.Lock()
        self.clients = ClusterClients()
        self.fetches = 0  # how many times the clusters were really queried (tests, /metrics-like curiosity)

    async def status(self) -> dict[str, Any]:
        ttl = self.settings.status_cache_seconds
        if self._cached is not None and time.monotonic() - self._cached_at < ttl:
            return self._cached
        async with self._lock:
            # Whoever waited on the lock finds the answer the first caller just built.
            if self._cached is not None and time.monotonic() - self._cached_at < ttl:
                return self._cached
            result = await self._build()
            self._cached, self._cached_at = result, time.monotonic()
            return result

    async def _build(self) -> dict[str, Any]:
        self.fetches += 1
        sources = cluster_sources(self.settings, self.environ)
        in_kubernetes = any(s.kind == "in-cluster" for s in sources)
        no_cluster = all(s.kind == "none" for s in sources)
        clusters = await asyncio.gather(
            *(read_cluster(s, self.settings.namespace, self.settings.k8s_timeout, self.clients) for s in sources)
        )
        local = None
        if not in_kubernetes or not any(c["reachable"] for c in clusters):
            timeout = min(self.settings.peer_timeout, 2.0)
            probes = await asyncio.gather(
                *(probe_service(self.http, name, url, timeout)
                  for name in self.settings.peers for url in self.settings.peer_urls(name))
            )
            me = {"service": self.settings.service, "url": None, "healthy": True, "ready": True, "info": self.settings.info(), "error": None}
            local = [me, *probes]
        return {
            "namespace": self.settings.namespace,
            "mode": "local" if no_cluster else "kubernetes",
            "generatedAt": iso(utcnow()),
            "cacheSeconds": self.settings.status_cache_seconds,
            "clusters": list(clusters),
            "local": local,
        }
