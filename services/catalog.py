"""The one source of truth for facts shared by the services, the local
launcher, the Pulumi program and the tests.

Service names, ports, default placement, labels, peer URLs and the UI files
are declared here and nowhere else. Import this module; do not copy its
values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NAMESPACE = "theater-msa"
CLUSTERS: tuple[str, ...] = ("ctx1", "ctx2")
# Node label that pins pods to a cluster (`cluster-name=ctx1|ctx2`).
CLUSTER_LABEL = "cluster-name"
# Pod label the Pulumi program sets to the cluster a Redis pod runs in: the
# selector of that cluster's Redis Service (RedisSpec.service_name).
CLUSTER_POD_LABEL = "theater-msa/cluster"
# Kubernetes DNS suffix used for peer URLs inside a cluster.
CLUSTER_DOMAIN = "svc.cluster.local"
# Label keys Kiali and Istio telemetry read the app name and version from.
APP_LABEL = "app"
VERSION_LABEL = "version"
DEFAULT_VERSION = "v1"


@dataclass(frozen=True)
class ServiceSpec:
    """One application service."""

    name: str  # Kubernetes Deployment/Service name, e.g. "user-service"
    port: int  # container and Service port
    module: str  # Python module holding `create_app()`
    home: str  # default cluster (overridable per stack)
    calls: tuple[str, ...] = ()  # services it calls over HTTP
    resource: str | None = None  # URL prefix it owns, e.g. "users"
    uses_redis: bool = True

    @property
    def url_env(self) -> str:
        """Environment variable that carries this service's base URL to its callers."""
        return self.name.upper().replace("-", "_") + "_URL"

    @property
    def port_name(self) -> str:
        """Service port name; the `http-` prefix tells Istio the protocol."""
        return "http-" + self.name.removesuffix("-service")

    def cluster_url(self, namespace: str = NAMESPACE) -> str:
        return f"http://{self.name}.{namespace}.{CLUSTER_DOMAIN}:{self.port}"

    def local_url(self, host: str = "127.0.0.1", port_offset: int = 0) -> str:
        """URL on this machine; `port_offset` shifts the port (a second copy
        of `theater local` beside the first)."""
        return f"http://{host}:{self.port + port_offset}"


USER = ServiceSpec("user-service", 8081, "services.user_service", "ctx1", resource="users")
MOVIE = ServiceSpec("movie-service", 8082, "services.movie_service", "ctx2", resource="movies")
BOOKING = ServiceSpec(
    "booking-service",
    8083,
    "services.booking_service",
    "ctx2",
    calls=("user-service", "movie-service"),
    resource="bookings",
)
GATEWAY = ServiceSpec(
    "api-gateway",
    8080,
    "services.api_gateway",
    "ctx1",
    calls=("user-service", "movie-service", "booking-service"),
    uses_redis=False,
)

@dataclass(frozen=True)
class VersionSpec:
    """A second version of a service, run beside the first as its own
    Deployment (canary, A/B and failover lessons). Same module and image
    recipe: only SERVICE_VERSION differs, and the service shows it."""

    spec: ServiceSpec
    version: str
    local_port: int  # its port in `theater local --with-v2` (the first version keeps spec.port)

    @property
    def name(self) -> str:
        """Deployment name, e.g. movie-service-v2."""
        return f"{self.spec.name}-{self.version}"

    def local_url(self, host: str = "127.0.0.1", port_offset: int = 0) -> str:
        return f"http://{host}:{self.local_port + port_offset}"


# movie-service v2 (services/movie_service.py): every movie answer also
# carries `bookingRate` (예매율). Istio's multicluster sample puts v1 in one
# cluster and v2 in the other; the lesson does the same (v1 in ctx2, v2 in ctx1).
MOVIE_V2 = VersionSpec(MOVIE, "v2", 8092)
# Services that have a second version, by service name.
VERSIONS: dict[str, VersionSpec] = {MOVIE_V2.spec.name: MOVIE_V2}

# Every service serves its Prometheus metrics here (services/common/app.py);
# the pod annotations in infra/microservice.py point Istio's metrics merge at it.
METRICS_PATH = "/metrics"

# Service-to-service endpoints live under this prefix. Neither the api-gateway
# nor the edge VirtualService routes it, and the AuthorizationPolicies let
# only in-mesh callers (not the ingress gateway or api-gateway) reach it.
INTERNAL_PREFIX = "/internal"

# Start order matters for the local launcher: callees before callers.
SERVICES: dict[str, ServiceSpec] = {s.name: s for s in (USER, MOVIE, BOOKING, GATEWAY)}
# The services the gateway proxies, keyed by URL prefix ("users" -> user-service).
ROUTED: dict[str, ServiceSpec] = {s.resource: s for s in SERVICES.values() if s.resource}


@dataclass(frozen=True)
class RedisSpec:
    """Each cluster runs one Redis (Deployment `redis`). Its Service is named
    after the cluster (`redis-ctx1`, `redis-ctx2`) and declared in every
    cluster: in Istio multi-cluster a Service of the same name and namespace
    is one service across the mesh, so `redis-ctx2` resolves in ctx1 and
    reaches ctx2's Redis through ctx2's east-west gateway (whose passthrough
    listener serves every Service, no DestinationRule subset needed). A pod
    is given the Service of its data's home cluster."""

    name: str = "redis"
    port: int = 6379
    port_name: str = "tcp-redis"
    image: str = "redis:7.4-alpine"
    # Memory Redis may use for data, and what happens past it: `noeviction`
    # refuses writes (the services answer 503 store_full) and never drops a
    # booking. 160 MB leaves the pod's 256 MiB limit room for the AOF
    # rewrite's fork (copy-on-write) and client buffers; 100k bookings take
    # ~84 MB, so ~190k bookings fit (bench/deletion.py; issue 25).
    maxmemory: str = "160mb"
    maxmemory_policy: str = "noeviction"

    def memory_args(self) -> list[str]:
        """redis-server flags for the two settings above (pod and local run)."""
        return ["--maxmemory", self.maxmemory, "--maxmemory-policy", self.maxmemory_policy]

    def service_name(self, cluster: str) -> str:
        """The Service of `cluster`'s Redis, e.g. redis-ctx2."""
        return f"{self.name}-{cluster}"

    def cluster_url(self, cluster: str, namespace: str = NAMESPACE, db: int = 0) -> str:
        """The URL of `cluster`'s Redis, from any cluster of the mesh."""
        return f"redis://{self.service_name(cluster)}.{namespace}.{CLUSTER_DOMAIN}:{self.port}/{db}"


REDIS = RedisSpec()

# The web UI: these files are served by api-gateway from UI_DIR locally and
# become the UI ConfigMap in Kubernetes.
UI_DIR = Path(__file__).resolve().parent / "ui"
UI_FILES: tuple[str, ...] = ("index.html", "app.js", "style.css", "favicon.svg")
# What `theater load` and `theater verify` make is named with these prefixes
# (users' names, movies' titles; bookings copy both), so the web page can
# hide demo traffic (its "부하·점검 데이터 숨기기" box; app.js DEMO_PREFIXES).
LOAD_NAME_PREFIX = "부하 테스트 "
VERIFY_NAME_PREFIX = "점검 테스트 "
DEMO_NAME_PREFIXES: tuple[str, ...] = (LOAD_NAME_PREFIX, VERIFY_NAME_PREFIX)
# Paths browsers ask for on their own, served from one of UI_FILES
# (every browser requests /favicon.ico unless the page names an icon).
UI_ALIASES: dict[str, str] = {"favicon.ico": "favicon.svg"}

# Where the api-gateway mounts a kubeconfig for the other cluster (from a Secret).
REMOTE_KUBECONFIG_DIR = "/etc/theater/remote"
GATEWAY_SERVICE_ACCOUNT = "api-gateway"
DASHBOARD_SERVICE_ACCOUNT = "theater-dashboard"


def default_placement() -> dict[str, str]:
    """Service name -> home cluster, before any stack override."""
    return {s.name: s.home for s in SERVICES.values()}


def labels(name: str, version: str = DEFAULT_VERSION) -> dict[str, str]:
    """Pod/Service labels: `app` and `version` for Kiali, plus the standard ones."""
    return {
        APP_LABEL: name,
        VERSION_LABEL: version,
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "theater-msa",
    }


def selector(name: str) -> dict[str, str]:
    return {APP_LABEL: name}
