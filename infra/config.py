"""Stack configuration: every `theater-msa:*` setting, read once and validated.

`SETTINGS` is the table of settings. Pulumi.yaml's `config:` block declares
the same keys with the same defaults (a test keeps the two in step; print the
block with `uv run python -m infra.config`). `load()` reads the settings once
into a frozen `StackConfig` and fails early with a message naming the key.

Objects (placement, faults, route policies) are JSON strings, because
Pulumi.yaml's `config:` block has no object type. `pulumi config set` them
with single quotes, e.g.::

    pulumi config set theater-msa:placement '{"movie-service": "ctx1"}'
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import pulumi
import yaml

from infra.k8sutil import label_value
from services import catalog

PROJECT = "theater-msa"

SettingType = Literal["string", "boolean", "integer", "array"]


@dataclass(frozen=True)
class Setting:
    key: str
    type: SettingType
    description: str
    # None: no default. The Pulumi CLI then requires the key on every stack
    # (domain, kubeContext in Pulumi.<stack>.yaml; harborPassword set as a secret).
    default: Any = None
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("domain", "string", "Base DNS domain; the app is served at http://theater.<domain> and the registry defaults to harbor.<domain>. Required."),
    Setting("kubeContext", "string", "kubectl context of this stack's cluster (ctx1 or ctx2). Required."),
    Setting("kubeconfig", "string", "Path to the kubeconfig file; empty means $KUBECONFIG or ~/.kube/config.", ""),
    Setting("clusterName", "string", "This cluster's name as in the node label cluster-name and in placement; empty means the stack name.", ""),
    Setting("istioApiVersion", "string", "API version of the Istio objects: v1beta1 (served by every Istio from 1.14 to today) or v1 (VirtualService, DestinationRule and PeerAuthentication only from Istio 1.22).", "v1beta1"),
    Setting("istioRevision", "string", "Istio revision for sidecar injection (namespace label istio.io/rev); empty means istio-injection=enabled.", ""),
    Setting("adoptExistingObjects", "boolean", "Adopt objects that already exist in the cluster (a pre-created namespace theater-msa, what the seed's kubectl deployment left) instead of failing with AlreadyExists: the provider's upsertExistingObjects and enablePatchForce. false: such a create fails; pulumi import the object or delete it.", True),
    Setting("ingressCluster", "string", "Cluster whose stack declares the edge VirtualService (where the ingress gateway runs).", catalog.CLUSTERS[0]),
    Setting("ingressGateway", "string", "Istio Gateway (namespace/name) the edge VirtualService binds to.", "istio-system/cp-gateway"),
    Setting("ingressServiceAccount", "string", "ServiceAccount of the ingress gateway pods, which the AuthorizationPolicies allow on the public paths: namespace/name, or namespace/* for every ServiceAccount of the gateway's namespace (the default; istioctl and operator installs name it istio-ingressgateway-service-account, the Helm gateway chart after the release).", "istio-system/*"),
    Setting("trustDomain", "string", "Istio trust domain used in AuthorizationPolicy principals.", "cluster.local"),
    Setting("registry", "string", "Image registry host; empty means harbor.<domain>.", ""),
    Setting("harborProject", "string", "Registry project (path) of the images.", "theater-msa"),
    Setting("harborUsername", "string", "Registry user that pushes the images.", "admin"),
    Setting("harborPassword", "string", "Registry password (secret, never committed): pulumi config set --secret theater-msa:harborPassword <password>. The CLI asks for it on every stack. The cluster also pulls with it unless pullPassword is set; with buildImages false and imagePullSecret false (or pullPassword set) any value will do.", None, secret=True),
    Setting("imagePullSecret", "boolean", "Create the kubernetes.io/dockerconfigjson Secret registry-pull from the registry credentials and list it in the imagePullSecrets of every ServiceAccount that runs a pod (Harbor projects are private unless marked public); false for a public project.", True),
    Setting("pullUsername", "string", "Registry user the cluster pulls with, best a pull-only Harbor robot account (e.g. robot$theater-msa+pull); empty means harborUsername.", ""),
    Setting("pullPassword", "string", "Password or token of pullUsername; set it with pulumi config set --secret theater-msa:pullPassword <token>. Empty means harborPassword.", ""),
    Setting("buildImages", "boolean", "Build and push the images of the services this stack deploys (false: use already-pushed <registry>/<project>/<service>:<imageTag>).", True),
    Setting("imageTag", "string", "Tag given to built images, or the tag (or sha256:... digest) of pre-pushed images when buildImages is false. Never latest.", catalog.DEFAULT_VERSION),
    Setting("platform", "string", "Target platform of the image build.", "linux/amd64"),
    Setting("serviceVersion", "string", "SERVICE_VERSION of the app pods, and their version label (characters a label value cannot hold become -).", catalog.DEFAULT_VERSION),
    Setting("replicas", "integer", "Replicas per app Deployment.", 2),
    Setting("placement", "string", 'JSON object overriding the home cluster per service, e.g. {"movie-service": "ctx1"}; empty means the default placement.', ""),
    Setting("redisStorageClass", "string", "StorageClass for a Redis PersistentVolumeClaim; empty means an emptyDir (data lost on pod restart).", ""),
    Setting("redisStorageSize", "string", "Size of the Redis PersistentVolumeClaim.", "1Gi"),
    Setting("redisImage", "string", "Redis image; set a Harbor copy (e.g. harbor.<domain>/library/redis:7.4-alpine) when the cluster cannot pull from Docker Hub.", catalog.REDIS.image),
    Setting("remoteStatusStack", "string", "Stack (org/project/stack) that exports dashboardKubeconfig, e.g. organization/theater-msa/ctx2. Set it after that stack exists; empty means the status page shows the other cluster as not connected.", ""),
    Setting("exportDashboardAccess", "string", "Create the read-only dashboard ServiceAccount and export dashboardKubeconfig (secret): true, false, or auto (when api-gateway does not run in this cluster).", "auto"),
    Setting("dashboardApiServer", "string", "API server URL written into the exported dashboard kubeconfig (must be reachable from the other cluster's pods); empty means the server of kubeContext in the kubeconfig file.", ""),
    Setting("faults", "string", 'Lesson: JSON fault injection per service, e.g. {"movie-service": {"delay": "3s", "percent": 50}} or {"booking-service": {"abort": 503, "percent": 20}}.', ""),
    Setting("routePolicies", "string", 'Lesson: JSON timeout/retries per service, e.g. {"movie-service": {"timeout": "1s", "attempts": 0}}; keys timeout, attempts, perTryTimeout, retryOn.', ""),
    Setting("tightCircuitBreaking", "array", "Lesson: services whose DestinationRule gets a very small connection pool and aggressive outlier detection.", []),
    Setting("v2Cluster", "string", "Lesson: the cluster (ctx1 or ctx2) where movie-service v2 runs as a second Deployment movie-service-v2 (labels app=movie-service, version=v2), and movie-service's DestinationRule gets the subsets v1 and v2. Set it on both stacks; empty means no v2.", ""),
    Setting("v2ImageTag", "string", "Tag of movie-service v2's image (built with SERVICE_VERSION=v2, or pre-pushed when buildImages is false). Never latest.", catalog.MOVIE_V2.version),
    Setting("canary", "string", 'Lesson (needs v2Cluster): JSON weights of movie-service\'s subsets on every route to it, e.g. {"v1": 80, "v2": 20}; they add up to 100.', ""),
    Setting("abTest", "string", 'Lesson (needs v2Cluster): JSON match that sends chosen users to movie-service v2 and everyone else to v1 (or by canary weights), e.g. {"header": "x-theater-group", "value": "beta"} or {"cookie": "theater-group", "value": "beta"}.', ""),
    Setting("failover", "boolean", "Lesson: run movie-service in both clusters, each cluster preferring its own replicas (DestinationRule localityLbSetting failoverPriority and outlierDetection) and failing over to the other cluster.", False),
)
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}

# Default timeout and retries on every route (edge and mesh); `routePolicies` overrides per service.
DEFAULT_ROUTE_POLICY: dict[str, Any] = {
    "timeout": "10s",
    "attempts": 2,
    "perTryTimeout": "4s",
    "retryOn": "gateway-error,connect-failure,refused-stream",
}
_DURATION = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h))+$")


class ConfigError(pulumi.RunError):
    """A missing or invalid setting; the message names the key."""


def qkey(key: str) -> str:
    return f"{PROJECT}:{key}"


def _hint(key: str, example: str = "<value>") -> str:
    secret = "--secret " if SETTINGS_BY_KEY.get(key, Setting(key, "string", "")).secret else ""
    return f"set {qkey(key)} with `pulumi config set {secret}{qkey(key)} {example}`"


@dataclass(frozen=True)
class Fault:
    delay: str | None = None
    abort: int | None = None
    percent: float = 100.0


@dataclass(frozen=True)
class RoutePolicy:
    timeout: str
    attempts: int
    per_try_timeout: str
    retry_on: str


# Lesson abTest: the header (or cookie) and value that send a request to v2.
@dataclass(frozen=True)
class AbTest:
    value: str
    header: str | None = None
    cookie: str | None = None


@dataclass(frozen=True)
class StackConfig:
    stack: str
    domain: str
    kube_context: str
    kubeconfig: str | None
    adopt_existing_objects: bool
    cluster: str
    istio_api_version: str
    istio_revision: str | None
    ingress_cluster: str
    ingress_gateway: str
    ingress_service_account: str
    trust_domain: str
    registry: str
    harbor_project: str
    harbor_username: str
    harbor_password: pulumi.Output[str] | None
    image_pull_secret: bool
    pull_username: str
    pull_password: pulumi.Output[str] | None
    build_images: bool
    image_tag: str
    platform: str
    service_version: str
    replicas: int
    placement: Mapping[str, str]
    redis_storage_class: str | None
    redis_storage_size: str
    redis_image: str
    remote_status_stack: str | None
    export_dashboard_access: bool
    dashboard_api_server: str | None
    faults: Mapping[str, Fault] = field(default_factory=dict)
    route_policies: Mapping[str, RoutePolicy] = field(default_factory=dict)
    tight_circuit_breaking: frozenset[str] = frozenset()
    v2_cluster: str | None = None
    v2_image_tag: str = catalog.MOVIE_V2.version
    canary: Mapping[str, int] = field(default_factory=dict)  # subset -> weight; empty: off
    ab_test: AbTest | None = None
    failover: bool = False

    @property
    def host(self) -> str:
        return f"theater.{self.domain}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def other_clusters(self) -> tuple[str, ...]:
        return tuple(c for c in catalog.CLUSTERS if c != self.cluster)

    @property
    def here(self) -> tuple[str, ...]:
        """Services whose (first version's) Deployment runs in this cluster, in
        catalog order. Lesson failover: movie-service runs in every cluster."""
        return tuple(n for n in catalog.SERVICES if self.placement[n] == self.cluster or n in self.failover_services)

    @property
    def failover_services(self) -> frozenset[str]:
        """Lesson failover: services deployed in every cluster, each cluster preferring its own replicas."""
        return frozenset({catalog.MOVIE.name}) if self.failover else frozenset()

    @property
    def versions_here(self) -> tuple[catalog.VersionSpec, ...]:
        """Second versions whose Deployment runs in this cluster (lesson v2Cluster)."""
        return (catalog.MOVIE_V2,) if self.v2_cluster == self.cluster else ()

    @property
    def workloads_here(self) -> tuple[str, ...]:
        """Services with pods of any version in this cluster (each needs its ServiceAccount)."""
        names = set(self.here) | {v.spec.name for v in self.versions_here}
        return tuple(n for n in catalog.SERVICES if n in names)

    @property
    def data_elsewhere(self) -> tuple[str, ...]:
        """Services with pods here whose data lives in their home cluster's
        Redis, elsewhere: their pods here must use that Redis."""
        return tuple(n for n in self.workloads_here if self.placement[n] != self.cluster)

    def subsets(self, service: str) -> dict[str, str]:
        """Subset name -> version label of `service`'s versions, or {} when it has one version."""
        version = catalog.VERSIONS.get(service)
        if version is None or self.v2_cluster is None:
            return {}
        return {catalog.DEFAULT_VERSION: label_value(self.service_version), version.version: version.version}

    @property
    def is_ingress_cluster(self) -> bool:
        return self.cluster == self.ingress_cluster

    def route_policy(self, service: str) -> RoutePolicy:
        return self.route_policies.get(service) or _route_policy("routePolicies", service, {})

    def image_repository(self, service: str) -> str:
        return f"{self.registry}/{self.harbor_project}/{service}"


def _route_policy(key: str, service: str, raw: Mapping[str, Any]) -> RoutePolicy:
    unknown = set(raw) - set(DEFAULT_ROUTE_POLICY)
    if unknown:
        raise ConfigError(f"{qkey(key)}: unknown field(s) {sorted(unknown)} for {service}; allowed: {sorted(DEFAULT_ROUTE_POLICY)}")
    merged = {**DEFAULT_ROUTE_POLICY, **raw}
    for dkey in ("timeout", "perTryTimeout"):
        if not isinstance(merged[dkey], str) or not _DURATION.match(merged[dkey]):
            raise ConfigError(f"{qkey(key)}: {service}.{dkey} must be a duration like 2s or 500ms, got {merged[dkey]!r}")
    attempts = merged["attempts"]
    if isinstance(attempts, bool) or not isinstance(attempts, (int, float)) or attempts < 0 or int(attempts) != attempts:
        raise ConfigError(f"{qkey(key)}: {service}.attempts must be a non-negative integer, got {attempts!r}")
    return RoutePolicy(merged["timeout"], int(attempts), merged["perTryTimeout"], str(merged["retryOn"]))


def parse_canary(value: Any) -> dict[str, int]:
    raw = _json_object("canary", value)
    if not raw:
        return {}
    subsets = [catalog.DEFAULT_VERSION, catalog.MOVIE_V2.version]
    if set(raw) != set(subsets):
        raise ConfigError(f"{qkey('canary')} needs exactly the weights {' and '.join(subsets)}, e.g. "
                          f"{{\"v1\": 80, \"v2\": 20}}; got {sorted(raw)}")
    for name in subsets:
        weight = raw[name]
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise ConfigError(f"{qkey('canary')}: {name} must be a whole number from 0 to 100, got {weight!r}")
    if sum(raw.values()) != 100:
        raise ConfigError(f"{qkey('canary')}: the weights must add up to 100, got {' + '.join(str(raw[n]) for n in subsets)}")
    return {name: raw[name] for name in subsets}


_HEADER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")
_MATCH_VALUE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def parse_ab_test(value: Any) -> AbTest | None:
    raw = _json_object("abTest", value)
    if not raw:
        return None
    unknown = set(raw) - {"header", "cookie", "value"}
    if unknown:
        raise ConfigError(f"{qkey('abTest')}: unknown field(s) {sorted(unknown)}; allowed: header or cookie, and value")
    if ("header" in raw) == ("cookie" in raw):
        raise ConfigError(f"{qkey('abTest')} needs either header or cookie (not both), e.g. "
                          f"{{\"header\": \"x-theater-group\", \"value\": \"beta\"}}")
    kind = "header" if "header" in raw else "cookie"
    name = raw[kind]
    if not isinstance(name, str) or not _HEADER_NAME.match(name) or (kind == "header" and name.startswith(("x-envoy", "x-forwarded"))):
        raise ConfigError(f"{qkey('abTest')}: {kind} must be a lower-case name of letters, digits and '-' "
                          f"(not x-envoy-*/x-forwarded-*), got {name!r}")
    match = raw.get("value")
    if not isinstance(match, str) or not _MATCH_VALUE.match(match):
        raise ConfigError(f"{qkey('abTest')}: value must be 1-64 letters, digits, '.', '_' or '-', got {match!r}")
    return AbTest(match, **{kind: name})


def _json_object(key: str, value: Any) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{qkey(key)} is not valid JSON ({exc}); {_hint(key, chr(39) + '{...}' + chr(39))}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{qkey(key)} must be a JSON object, got {type(value).__name__}")
    return value


def _check_service(key: str, name: str) -> None:
    if name not in catalog.SERVICES:
        raise ConfigError(f"{qkey(key)}: unknown service {name!r}; known services: {', '.join(catalog.SERVICES)}")


def parse_placement(value: Any) -> dict[str, str]:
    placement = catalog.default_placement()
    for service, cluster in _json_object("placement", value).items():
        _check_service("placement", service)
        if cluster not in catalog.CLUSTERS:
            raise ConfigError(
                f"{qkey('placement')}: unknown cluster {cluster!r} for {service}; known clusters: {', '.join(catalog.CLUSTERS)}"
            )
        placement[service] = cluster
    return placement


def parse_faults(value: Any) -> dict[str, Fault]:
    faults: dict[str, Fault] = {}
    for service, raw in _json_object("faults", value).items():
        _check_service("faults", service)
        if not isinstance(raw, dict) or not raw:
            raise ConfigError(f"{qkey('faults')}: {service} needs an object with delay or abort")
        unknown = set(raw) - {"delay", "abort", "percent"}
        if unknown:
            raise ConfigError(f"{qkey('faults')}: unknown field(s) {sorted(unknown)} for {service}; allowed: delay, abort, percent")
        delay, abort, percent = raw.get("delay"), raw.get("abort"), raw.get("percent", 100)
        if delay is None and abort is None:
            raise ConfigError(f"{qkey('faults')}: {service} needs delay (e.g. \"3s\") or abort (e.g. 503)")
        if delay is not None and (not isinstance(delay, str) or not _DURATION.match(delay)):
            raise ConfigError(f"{qkey('faults')}: {service}.delay must be a duration like 3s, got {delay!r}")
        if abort is not None and (isinstance(abort, bool) or not isinstance(abort, int) or not 200 <= abort <= 599):
            raise ConfigError(f"{qkey('faults')}: {service}.abort must be an HTTP status 200-599, got {abort!r}")
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent <= 100:
            raise ConfigError(f"{qkey('faults')}: {service}.percent must be in (0, 100], got {percent!r}")
        faults[service] = Fault(delay, abort, float(percent))
    return faults


def parse_route_policies(value: Any) -> dict[str, RoutePolicy]:
    policies: dict[str, RoutePolicy] = {}
    for service, raw in _json_object("routePolicies", value).items():
        _check_service("routePolicies", service)
        if not isinstance(raw, dict):
            raise ConfigError(f"{qkey('routePolicies')}: {service} needs an object")
        policies[service] = _route_policy("routePolicies", service, raw)
    return policies


def parse_service_list(key: str, value: Any) -> frozenset[str]:
    if value in (None, ""):
        return frozenset()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"{qkey(key)} must be a list of service names")
    for name in value:
        _check_service(key, name)
    return frozenset(value)


def kubeconfig_server(context: str, kubeconfig: str | None) -> str | None:
    """The API server URL of `context` in the kubeconfig file, or None."""
    paths = [kubeconfig] if kubeconfig else (os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")).split(os.pathsep)
    for path in paths:
        try:
            doc = yaml.safe_load(Path(path).expanduser().read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        ctx = next((c.get("context", {}) for c in doc.get("contexts") or [] if c.get("name") == context), None)
        if ctx is None:
            continue
        cluster = next((c.get("cluster", {}) for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), {})
        if cluster.get("server"):
            return str(cluster["server"])
    return None


def load(stack: str | None = None, cfg: pulumi.Config | None = None) -> StackConfig:
    """Read and validate every setting once."""
    stack = stack or pulumi.get_stack()
    cfg = cfg or pulumi.Config(PROJECT)

    def text(key: str) -> str:
        raw = cfg.get(key)
        default = SETTINGS_BY_KEY[key].default
        return (raw if raw is not None else (default if default is not None else "")).strip()

    def required(key: str, example: str) -> str:
        value = text(key)
        if not value:
            raise ConfigError(f"missing setting {qkey(key)}: {_hint(key, example)}")
        return value

    def boolean(key: str) -> bool | None:
        try:
            value = cfg.get_bool(key)
        except pulumi.ConfigTypeError:
            raise ConfigError(f"{qkey(key)} must be true or false") from None
        return SETTINGS_BY_KEY[key].default if value is None else value

    domain = required("domain", "27.96.156.180.nip.io")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", domain):
        raise ConfigError(f"{qkey('domain')} must be a DNS name like 27.96.156.180.nip.io, got {domain!r}")
    kube_context = required("kubeContext", stack)
    cluster = text("clusterName") or stack
    if cluster not in catalog.CLUSTERS:
        raise ConfigError(
            f"{qkey('clusterName')} is {cluster!r} (defaults to the stack name); it must be one of {', '.join(catalog.CLUSTERS)}: {_hint('clusterName', catalog.CLUSTERS[0])}"
        )
    ingress_cluster = text("ingressCluster")
    if ingress_cluster not in catalog.CLUSTERS:
        raise ConfigError(f"{qkey('ingressCluster')} must be one of {', '.join(catalog.CLUSTERS)}, got {ingress_cluster!r}")
    if not re.fullmatch(r"[a-z0-9-]+/[a-z0-9.-]+", text("ingressGateway")):
        raise ConfigError(f"{qkey('ingressGateway')} must look like namespace/name, got {text('ingressGateway')!r}")
    if not re.fullmatch(r"[a-z0-9-]+/([a-z0-9.-]+|\*)", text("ingressServiceAccount")):
        raise ConfigError(
            f"{qkey('ingressServiceAccount')} must look like namespace/name or namespace/* (every ServiceAccount "
            f"of that namespace), got {text('ingressServiceAccount')!r}"
        )

    istio_api_version = text("istioApiVersion")
    if istio_api_version not in ("v1beta1", "v1"):
        raise ConfigError(
            f"{qkey('istioApiVersion')} must be v1beta1 (every Istio release from 1.14) or v1 (Istio 1.22 and later), "
            f"got {istio_api_version!r}"
        )
    istio_revision = text("istioRevision") or None
    # A namespace label value, and it must equal the revision exactly: checked, not rewritten.
    if istio_revision and (len(istio_revision) > 63 or not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", istio_revision)):
        raise ConfigError(
            f"{qkey('istioRevision')} must be an Istio revision name such as 1-24 (a label value: at most 63 letters, "
            f"digits, '-', '_' or '.', starting and ending with a letter or digit), got {istio_revision!r}"
        )

    try:
        replicas = cfg.get_int("replicas")
    except pulumi.ConfigTypeError:
        raise ConfigError(f"{qkey('replicas')} must be an integer") from None
    replicas = SETTINGS_BY_KEY["replicas"].default if replicas is None else replicas
    if replicas < 0:
        raise ConfigError(f"{qkey('replicas')} must be >= 0, got {replicas}")

    build_images = bool(boolean("buildImages"))
    image_tag = text("imageTag")
    if not image_tag or image_tag == "latest":
        raise ConfigError(f"{qkey('imageTag')} must be a fixed tag (not latest): {_hint('imageTag', 'v1')}")
    password = cfg.get_secret("harborPassword")
    if build_images and password is None:
        raise ConfigError(
            f"missing setting {qkey('harborPassword')} (needed because {qkey('buildImages')} is true): {_hint('harborPassword', '<password>')}"
        )

    image_pull_secret = bool(boolean("imagePullSecret"))
    # Read as a secret whether or not it was set with --secret.
    pull_password = cfg.get_secret("pullPassword") if text("pullPassword") else password
    if image_pull_secret and pull_password is None:
        raise ConfigError(
            f"missing setting {qkey('pullPassword')} or {qkey('harborPassword')} (the cluster pulls the images with it "
            f"because {qkey('imagePullSecret')} is true): `pulumi config set --secret {qkey('pullPassword')} <robot-token>`, "
            f"or set {qkey('imagePullSecret')} false for a public registry project"
        )

    placement = parse_placement(cfg.get("placement"))
    export_text = text("exportDashboardAccess").lower()
    if export_text not in ("auto", "true", "false"):
        raise ConfigError(f"{qkey('exportDashboardAccess')} must be auto, true or false, got {export_text!r}")
    export = placement[catalog.GATEWAY.name] != cluster if export_text == "auto" else export_text == "true"
    kubeconfig = text("kubeconfig") or None

    v2_cluster = text("v2Cluster") or None
    if v2_cluster is not None and v2_cluster not in catalog.CLUSTERS:
        raise ConfigError(f"{qkey('v2Cluster')} must be one of {', '.join(catalog.CLUSTERS)} or empty, got {v2_cluster!r}")
    v2_image_tag = text("v2ImageTag")
    if not v2_image_tag or v2_image_tag == "latest":
        raise ConfigError(f"{qkey('v2ImageTag')} must be a fixed tag (not latest): {_hint('v2ImageTag', catalog.MOVIE_V2.version)}")
    canary = parse_canary(cfg.get("canary"))
    ab_test = parse_ab_test(cfg.get("abTest"))
    for key, on in (("canary", canary), ("abTest", ab_test)):
        if on and v2_cluster is None:
            raise ConfigError(f"{qkey(key)} routes to movie-service v2, which does not run: "
                              f"{_hint('v2Cluster', catalog.CLUSTERS[0])} on both stacks first")
    if v2_cluster is not None and label_value(text("serviceVersion")) == catalog.MOVIE_V2.version:
        raise ConfigError(f"{qkey('serviceVersion')} is {catalog.MOVIE_V2.version}, the version of the second "
                          f"Deployment ({qkey('v2Cluster')}): the subsets v1 and v2 could not be told apart")

    return StackConfig(
        stack=stack,
        domain=domain,
        kube_context=kube_context,
        kubeconfig=kubeconfig,
        adopt_existing_objects=bool(boolean("adoptExistingObjects")),
        cluster=cluster,
        istio_api_version=istio_api_version,
        istio_revision=istio_revision,
        ingress_cluster=ingress_cluster,
        ingress_gateway=text("ingressGateway"),
        ingress_service_account=text("ingressServiceAccount"),
        trust_domain=text("trustDomain"),
        registry=text("registry") or f"harbor.{domain}",
        harbor_project=text("harborProject"),
        harbor_username=text("harborUsername"),
        harbor_password=password,
        image_pull_secret=image_pull_secret,
        pull_username=text("pullUsername") or text("harborUsername"),
        pull_password=pull_password,
        build_images=build_images,
        image_tag=image_tag,
        platform=text("platform"),
        service_version=text("serviceVersion"),
        replicas=replicas,
        placement=placement,
        redis_storage_class=text("redisStorageClass") or None,
        redis_storage_size=text("redisStorageSize"),
        redis_image=text("redisImage") or catalog.REDIS.image,
        remote_status_stack=text("remoteStatusStack") or None,
        export_dashboard_access=export,
        dashboard_api_server=text("dashboardApiServer") or None,
        faults=parse_faults(cfg.get("faults")),
        route_policies=parse_route_policies(cfg.get("routePolicies")),
        tight_circuit_breaking=parse_service_list("tightCircuitBreaking", cfg.get("tightCircuitBreaking")),
        v2_cluster=v2_cluster,
        v2_image_tag=v2_image_tag,
        canary=canary,
        ab_test=ab_test,
        failover=bool(boolean("failover")),
    )


def pulumi_yaml_config_block() -> dict[str, Any]:
    """The `config:` block of Pulumi.yaml as declared by SETTINGS."""
    block: dict[str, Any] = {"pulumi:disable-default-providers": {"value": ["kubernetes"]}}
    for s in SETTINGS:
        entry: dict[str, Any] = {"type": s.type, "description": s.description}
        if s.type == "array":
            entry["items"] = {"type": "string"}
        if s.default is not None:
            entry["default"] = s.default
        if s.secret:
            entry["secret"] = True
        block[s.key] = entry
    return block


if __name__ == "__main__":  # uv run python -m infra.config
    print(yaml.safe_dump({"config": pulumi_yaml_config_block()}, sort_keys=False, width=1000, allow_unicode=True))


__all__ = ["AbTest", "ConfigError", "Fault", "RoutePolicy", "SETTINGS", "StackConfig", "load", "qkey"]
