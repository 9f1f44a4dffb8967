"""Every `theater-msa:*` stack setting, declared once: the fields of StackConfig.

A field with an alias is a setting; the alias is its key. Its type, default
and description are written here and nowhere else:
- Pulumi.yaml's `config:` block is generated from them (`uv run python -m
  infra.settings --write`; tests/infra/test_config.py fails when it is stale);
- infra/config.py reads every setting from Pulumi into StackConfig, once;
- docs/settings.md's table describes each key in Korean (a test checks that it
  lists every key).

Objects (placement, faults, route policies, ...) are JSON strings, parsed
by infra/setting_objects.py.

No Pulumi import here: the secrets (harborPassword, pullPassword) arrive as
whatever the reader passes (a pulumi.Output under Pulumi) and are not
inspected.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import pydantic
import yaml

from infra.names import label_value
from infra.setting_objects import (
    AbTest,
    Fault,
    RoutePolicy,
    SettingError,
    parse_ab_test,
    parse_canary,
    parse_faults,
    parse_image_digests,
    parse_placement,
    parse_route_policies,
    parse_service_list,
    qkey,
)
from services import catalog

PULUMI_YAML = Path(__file__).resolve().parent.parent / "Pulumi.yaml"

SettingType = Literal["string", "boolean", "integer", "array"]


# A secret: a pulumi.Output[str] under Pulumi, never inspected here. A
# setting of this type is read as a secret even when set without --secret.
_SECRET = "secret"
Secret = Annotated[Any, _SECRET]


def setting(default: Any = None, *, key: str, description: str, example: str = "<value>", secret: bool = False,
            type: SettingType | None = None) -> Any:
    """A stack setting. A default of None means none: the Pulumi CLI then asks
    for the key on every stack. `example` goes into error messages; `type` is
    its type in Pulumi.yaml when the field's own type does not say it."""
    return pydantic.Field(default, alias=key, description=description,
                          json_schema_extra={"example": example, "secret": secret, "type": type})


def _hint(key: str) -> str:
    field = _FIELDS_BY_KEY.get(key)
    extra = (field.json_schema_extra or {}) if field else {}
    secret = "--secret " if extra.get("secret") else ""
    return f"set {qkey(key)} with `pulumi config set {secret}{qkey(key)} {extra.get('example', '<value>')}`"


def _fail(key: str, message: str) -> SettingError:
    return SettingError(f"{qkey(key)} {message}")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


_DNS_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
_SUBDOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_NAMESPACED = re.compile(r"[a-z0-9-]+/[a-z0-9.-]+")
_NAMESPACED_OR_ALL = re.compile(r"[a-z0-9-]+/([a-z0-9.-]+|\*)")
_NAMESPACED_SETTINGS = {
    "ingress_gateway": (_NAMESPACED, "namespace/name"),
    "ingress_service_account": (_NAMESPACED_OR_ALL, "namespace/name or namespace/* (every ServiceAccount of that namespace)"),
}
_REVISION = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


class StackConfig(pydantic.BaseModel):
    """One stack's settings, validated. Build it with `from_values`."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", validate_default=True,
                                       arbitrary_types_allowed=True, populate_by_name=False)

    stack: str  # not a setting: the Pulumi stack's name

    domain: str = setting(key="domain", example="27.96.156.180.nip.io", description="Base DNS domain; the app is served at http://theater.<domain> and the registry defaults to harbor.<domain>. Required.")
    kube_context: str = setting(key="kubeContext", example="ctx1", description="kubectl context of this stack's cluster (ctx1 or ctx2). Required.")
    kubeconfig: str | None = setting("", key="kubeconfig", description="Path to the kubeconfig file; empty means $KUBECONFIG or ~/.kube/config.")
    cluster: str = setting("", key="clusterName", example=catalog.CLUSTERS[0], description="This cluster's name as in the node label cluster-name and in placement; empty means the stack name.")
    istio_api_version: str = setting("v1beta1", key="istioApiVersion", example="v1", description="API version of the Istio objects: v1beta1 (served by every Istio from 1.14 to today) or v1 (VirtualService, DestinationRule and PeerAuthentication only from Istio 1.22).")
    istio_revision: str | None = setting("", key="istioRevision", example="1-24", description="Istio revision for sidecar injection (namespace label istio.io/rev); empty means istio-injection=enabled.")
    adopt_existing_objects: bool = setting(True, key="adoptExistingObjects", example="false", description="Adopt objects that already exist in the cluster (a pre-created namespace theater-msa, what the seed's kubectl deployment left) instead of failing with AlreadyExists: the provider's upsertExistingObjects and enablePatchForce. false: such a create fails; pulumi import the object or delete it.")
    ingress_cluster: str = setting(catalog.CLUSTERS[0], key="ingressCluster", description="Cluster whose stack declares the edge VirtualService (where the ingress gateway runs).")
    ingress_gateway: str = setting("istio-system/cp-gateway", key="ingressGateway", description="Istio Gateway (namespace/name) the edge VirtualService binds to.")
    ingress_service_account: str = setting("istio-system/*", key="ingressServiceAccount", description="ServiceAccount of the ingress gateway pods, which the AuthorizationPolicies allow on the public paths: namespace/name, or namespace/* for every ServiceAccount of the gateway's namespace (the default; istioctl and operator installs name it istio-ingressgateway-service-account, the Helm gateway chart after the release).")
    trust_domain: str = setting("cluster.local", key="trustDomain", description="Istio trust domain used in AuthorizationPolicy principals.")
    registry: str = setting("", key="registry", description="Image registry host; empty means harbor.<domain>.")
    harbor_project: str = setting("theater-msa", key="harborProject", description="Registry project (path) of the images.")
    harbor_username: str = setting("admin", key="harborUsername", description="Registry user that pushes the images.")
    harbor_password: Secret = setting(key="harborPassword", secret=True, example="<password>", description="Registry password (secret, never committed): pulumi config set --secret theater-msa:harborPassword <password>. The CLI asks for it on every stack. The cluster also pulls with it unless pullPassword is set; with buildImages false and imagePullSecret false (or pullPassword set) any value will do.")
    image_pull_secret: bool = setting(True, key="imagePullSecret", example="false", description="Create the kubernetes.io/dockerconfigjson Secret registry-pull from the registry credentials and list it in the imagePullSecrets of every ServiceAccount that runs a pod (Harbor projects are private unless marked public); false for a public project.")
    pull_username: str = setting("", key="pullUsername", description="Registry user the cluster pulls with, best a pull-only Harbor robot account (e.g. robot$theater-msa+pull); empty means harborUsername.")
    demo_password: Secret = setting("", key="demoPassword", example="<password>", description="Shared demo password: when set, api-gateway asks every browser and client for it (HTTP Basic, any user name) except on /healthz, /readyz and /metrics; pulumi config set --secret theater-msa:demoPassword <password>. Empty means the app is open to everyone who reaches its address.")
    pull_password: Secret = setting("", key="pullPassword", example="<robot-token>", description="Password or token of pullUsername; set it with pulumi config set --secret theater-msa:pullPassword <token>. Empty means harborPassword.")
    build_images: bool = setting(True, key="buildImages", example="false", description="Build and push the images of the services this stack deploys (false: use already-pushed <registry>/<project>/<service>:<imageTag>).")
    image_tag: str = setting(catalog.DEFAULT_VERSION, key="imageTag", example="v1", description="Tag given to built images, or the tag of pre-pushed images when buildImages is false (a sha256:... digest only when this stack deploys a single image: a digest names one image). Never latest.")
    image_digests: Mapping[str, str] = setting("", key="imageDigests", example="'{\"user-service\": \"sha256:<64 hex>\"}'", description='With buildImages false: JSON object of the pushed digest per image (a service, or movie-service-v2), e.g. {"user-service": "sha256:..."}; those Deployments pull <repository>:<tag>@<digest>, so a re-pushed tag rolls the pods and every node runs the same image. `theater images push` prints it. Empty means by tag.')
    platform: str = setting("linux/amd64", key="platform", description="Target platform of the image build.")
    service_version: str = setting(catalog.DEFAULT_VERSION, key="serviceVersion", description="SERVICE_VERSION of the app pods, and their version label (characters a label value cannot hold become -).")
    replicas: int = setting(2, key="replicas", example="2", description="Replicas per app Deployment.")
    placement: Mapping[str, str] = setting("", key="placement", example="'{\"movie-service\": \"ctx1\"}'", description='JSON object overriding the home cluster per service, e.g. {"movie-service": "ctx1"}; empty means the default placement.')
    redis_storage_class: str | None = setting("", key="redisStorageClass", example="emptyDir", description="StorageClass of Redis' PersistentVolumeClaim; empty means the cluster's default StorageClass (NKS: nks-block-storage); emptyDir means no claim (the data is lost whenever the pod moves).")
    redis_storage_size: str = setting("1Gi", key="redisStorageSize", description="Size of the Redis PersistentVolumeClaim.")
    redis_image: str = setting(catalog.REDIS.image, key="redisImage", description="Redis image; set a Harbor copy (e.g. harbor.<domain>/library/redis:7.4-alpine) when the cluster cannot pull from Docker Hub.")
    remote_status_stack: str | None = setting("", key="remoteStatusStack", description="Stack (org/project/stack) that exports dashboardKubeconfig, e.g. organization/theater-msa/ctx2. Set it after that stack exists; empty means the status page shows the other cluster as not connected.")
    export_dashboard_access: bool = setting("auto", key="exportDashboardAccess", example="false", type="string", description="Create the read-only dashboard ServiceAccount and export dashboardKubeconfig (secret): true, false, or auto (when api-gateway does not run in this cluster).")
    dashboard_api_server: str | None = setting("", key="dashboardApiServer", example="https://<api-server>:6443", description="API server URL written into the exported dashboard kubeconfig (must be reachable from the other cluster's pods); empty means the server of kubeContext in the kubeconfig file.")
    faults: Mapping[str, Fault] = setting("", key="faults", example="'{\"movie-service\": {\"delay\": \"3s\", \"percent\": 50}}'", description='Lesson: JSON fault injection per service, e.g. {"movie-service": {"delay": "3s", "percent": 50}} or {"booking-service": {"abort": 503, "percent": 20}}.')
    route_policies: Mapping[str, RoutePolicy] = setting("", key="routePolicies", example="'{\"movie-service\": {\"timeout\": \"1s\"}}'", description='Lesson: JSON timeout/retries per service, e.g. {"movie-service": {"timeout": "1s", "attempts": 0}}; keys timeout, attempts, perTryTimeout, retryOn.')
    tight_circuit_breaking: frozenset[str] = setting([], key="tightCircuitBreaking", example="'[\"movie-service\"]'", description="Lesson: services whose DestinationRule gets a very small connection pool and aggressive outlier detection.")
    v2_cluster: str | None = setting("", key="v2Cluster", example=catalog.CLUSTERS[0], description="Lesson: the cluster (ctx1 or ctx2) where movie-service v2 runs as a second Deployment movie-service-v2 (labels app=movie-service, version=v2), and movie-service's DestinationRule gets the subsets v1 and v2. Set it on both stacks; empty means no v2.")
    v2_image_tag: str = setting(catalog.MOVIE_V2.version, key="v2ImageTag", example=catalog.MOVIE_V2.version, description="Tag of movie-service v2's image (built with SERVICE_VERSION=v2, or pre-pushed when buildImages is false). Never latest.")
    canary: Mapping[str, int] = setting("", key="canary", example="'{\"v1\": 80, \"v2\": 20}'", description='Lesson (needs v2Cluster): JSON weights of movie-service\'s subsets on every route to it, e.g. {"v1": 80, "v2": 20}; they add up to 100.')
    ab_test: AbTest | None = setting("", key="abTest", example="'{\"header\": \"x-theater-group\", \"value\": \"beta\"}'", description='Lesson (needs v2Cluster): JSON match that sends chosen users to movie-service v2 and everyone else to v1 (or by canary weights), e.g. {"header": "x-theater-group", "value": "beta"} or {"cookie": "theater-group", "value": "beta"}.')
    failover: bool = setting(False, key="failover", example="true", description="Lesson: run movie-service in both clusters, each cluster preferring its own replicas (DestinationRule localityLbSetting failoverPriority and outlierDetection) and failing over to the other cluster.")

    # --- reading ----------------------------------------------------------------

    @classmethod
    def from_values(cls, stack: str, values: Mapping[str, Any]) -> StackConfig:
        """Validate `values` (key -> the text Pulumi holds, or a secret); unset keys take their default.
        Raises SettingError naming every bad key."""
        unknown = set(values) - set(_FIELDS_BY_KEY)
        if unknown:
            raise SettingError(f"unknown setting(s) {', '.join(qkey(k) for k in sorted(unknown))}")
        try:
            return cls.model_validate({"stack": stack, **{k: v for k, v in values.items() if v is not None}})
        except pydantic.ValidationError as exc:
            raise SettingError("\n".join(_problem(err) for err in exc.errors(include_url=False))) from None

    @pydantic.field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @pydantic.field_validator("domain", "kube_context", mode="before")
    @classmethod
    def _required(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        key = cls.model_fields[info.field_name].alias
        if not _text(value):
            raise SettingError(f"missing setting {qkey(key)}: {_hint(key)}")
        if key == "domain" and not _DNS_NAME.fullmatch(_text(value)):
            raise _fail(key, f"must be a DNS name like 27.96.156.180.nip.io, got {value!r}")
        return _text(value)

    @pydantic.field_validator("adopt_existing_objects", "image_pull_secret", "build_images", "failover", mode="before")
    @classmethod
    def _boolean(cls, value: Any, info: pydantic.ValidationInfo) -> bool:
        if isinstance(value, bool):
            return value
        if _text(value) in ("true", "True", "false", "False"):
            return _text(value).lower() == "true"
        raise _fail(cls.model_fields[info.field_name].alias, f"must be true or false, got {value!r}")

    @pydantic.field_validator("replicas", mode="before")
    @classmethod
    def _replicas(cls, value: Any) -> int:
        try:
            replicas = int(_text(value)) if not isinstance(value, int) or isinstance(value, bool) else value
        except ValueError:
            raise _fail("replicas", f"must be an integer, got {value!r}") from None
        if replicas < 0:
            raise _fail("replicas", f"must be >= 0, got {replicas}")
        return replicas

    @pydantic.field_validator("kubeconfig", "istio_revision", "redis_storage_class", "remote_status_stack",
                              "dashboard_api_server", "v2_cluster", mode="before")
    @classmethod
    def _optional(cls, value: Any, info: pydantic.ValidationInfo) -> str | None:
        value = _text(value) or None
        if value is None:
            return None
        if info.field_name == "istio_revision" and (len(value) > 63 or not _REVISION.fullmatch(value)):
            # A namespace label value, and it must equal the revision exactly: checked, not rewritten.
            raise _fail("istioRevision", f"must be an Istio revision name such as 1-24 (a label value: at most 63 "
                        f"letters, digits, '-', '_' or '.', starting and ending with a letter or digit), got {value!r}")
        if info.field_name == "redis_storage_class" and value != "emptyDir" and not _SUBDOMAIN.fullmatch(value):
            raise _fail("redisStorageClass", f"must be a StorageClass name (lower-case letters, digits, '-' and '.'), "
                        f"emptyDir, or empty for the cluster's default StorageClass, got {value!r}")
        if info.field_name == "v2_cluster" and value not in catalog.CLUSTERS:
            raise _fail("v2Cluster", f"must be one of {', '.join(catalog.CLUSTERS)} or empty, got {value!r}")
        return value

    @pydantic.field_validator("cluster", mode="before")
    @classmethod
    def _cluster(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        cluster = _text(value) or info.data["stack"]
        if cluster not in catalog.CLUSTERS:
            raise _fail("clusterName", f"is {cluster!r} (defaults to the stack name); it must be one of "
                        f"{', '.join(catalog.CLUSTERS)}: {_hint('clusterName')}")
        return cluster

    @pydantic.field_validator("ingress_cluster", mode="before")
    @classmethod
    def _ingress_cluster(cls, value: Any) -> str:
        if _text(value) not in catalog.CLUSTERS:
            raise _fail("ingressCluster", f"must be one of {', '.join(catalog.CLUSTERS)}, got {value!r}")
        return _text(value)

    @pydantic.field_validator("ingress_gateway", "ingress_service_account", mode="before")
    @classmethod
    def _namespaced(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        pattern, shape = _NAMESPACED_SETTINGS[info.field_name]
        if not pattern.fullmatch(_text(value)):
            raise _fail(cls.model_fields[info.field_name].alias, f"must look like {shape}, got {value!r}")
        return _text(value)

    @pydantic.field_validator("istio_api_version", mode="before")
    @classmethod
    def _istio_api_version(cls, value: Any) -> str:
        if _text(value) not in ("v1beta1", "v1"):
            raise _fail("istioApiVersion", f"must be v1beta1 (every Istio release from 1.14) or v1 (Istio 1.22 and "
                        f"later), got {value!r}")
        return _text(value)

    @pydantic.field_validator("image_tag", "v2_image_tag", mode="before")
    @classmethod
    def _tag(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        key = cls.model_fields[info.field_name].alias
        if _text(value) in ("", "latest"):
            raise _fail(key, f"must be a fixed tag (not latest): {_hint(key)}")
        return _text(value)

    @pydantic.field_validator("redis_image", mode="before")
    @classmethod
    def _redis_image(cls, value: Any) -> str:
        return _text(value) or catalog.REDIS.image

    @pydantic.field_validator("placement", "faults", "route_policies", "tight_circuit_breaking", "canary", "ab_test",
                              "image_digests", mode="before")
    @classmethod
    def _json(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        return _JSON_SETTINGS[info.field_name](value)

    @pydantic.field_validator("export_dashboard_access", mode="before")
    @classmethod
    def _export(cls, value: Any, info: pydantic.ValidationInfo) -> bool:
        if isinstance(value, bool):
            return value
        text = _text(value).lower()
        if text not in ("auto", "true", "false"):
            raise _fail("exportDashboardAccess", f"must be auto, true or false, got {text!r}")
        if text != "auto":
            return text == "true"
        if "placement" not in info.data or "cluster" not in info.data:
            return False  # reported by those fields' own errors
        return info.data["placement"][catalog.GATEWAY.name] != info.data["cluster"]

    @pydantic.model_validator(mode="wrap")
    @classmethod
    def _derived(cls, data: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> StackConfig:
        """Defaults that name another setting, and the rules that join two settings."""
        config = handler(data)
        password = config.harbor_password
        if config.build_images and password is None:
            raise SettingError(f"missing setting {qkey('harborPassword')} (needed because {qkey('buildImages')} "
                               f"is true): {_hint('harborPassword')}")
        pull_password = config.pull_password if _given(config.pull_password) else password
        if config.image_pull_secret and pull_password is None:
            raise SettingError(
                f"missing setting {qkey('pullPassword')} or {qkey('harborPassword')} (the cluster pulls the images "
                f"with it because {qkey('imagePullSecret')} is true): `pulumi config set --secret "
                f"{qkey('pullPassword')} <robot-token>`, or set {qkey('imagePullSecret')} false for a public registry project")
        config._check_digests()
        for key, on in (("canary", config.canary), ("abTest", config.ab_test)):
            if on and config.v2_cluster is None:
                raise SettingError(f"{qkey(key)} routes to movie-service v2, which does not run: "
                                   f"{_hint('v2Cluster')} on both stacks first")
        if config.v2_cluster is not None and label_value(config.service_version) == catalog.MOVIE_V2.version:
            raise SettingError(f"{qkey('serviceVersion')} is {catalog.MOVIE_V2.version}, the version of the second "
                               f"Deployment ({qkey('v2Cluster')}): the subsets v1 and v2 could not be told apart")
        return config.model_copy(update={
            "registry": config.registry or f"harbor.{config.domain}",
            "pull_username": config.pull_username or config.harbor_username,
            "pull_password": pull_password,
            "demo_password": config.demo_password if _given(config.demo_password) else None,
        })

    def _check_digests(self) -> None:
        """A digest names one image: as imageTag (or v2ImageTag) it would be
        applied to every service's repository, and all but one pull would fail.
        imageDigests names each image's digest, for pre-pushed images only."""
        if self.image_digests and self.build_images:
            raise SettingError(f"{qkey('imageDigests')} is set, but {qkey('buildImages')} is true: a build pushes "
                               f"its own images and uses their digests. Set {qkey('buildImages')} false to deploy the "
                               f"pushed digests, or remove it: pulumi config rm {qkey('imageDigests')} --stack {self.stack}")
        for key, tag, images in (("imageTag", self.image_tag, self.here),
                                 ("v2ImageTag", self.v2_image_tag, [v.name for v in self.versions_here])):
            both = [image for image in images if image in self.image_digests]
            if tag.startswith("sha256:") and both:
                raise SettingError(f"{qkey(key)} is a digest and {qkey('imageDigests')} gives {', '.join(both)} "
                                   f"another: keep one, e.g. set {qkey(key)} to the tag that was pushed")
            if not tag.startswith("sha256:") or not images:
                continue
            if self.build_images:
                raise SettingError(f"{qkey(key)} is a digest ({tag[:19]}…), but {qkey('buildImages')} is true and "
                                   f"a build is given a tag, not a digest: set a tag such as v1")
            if len(images) > 1:
                raise SettingError(
                    f"{qkey(key)} is a digest ({tag[:19]}…), which names one image, but this stack deploys "
                    f"{len(images)} ({', '.join(images)}): each would be pulled as <its repository>@{tag[:19]}… and all "
                    f"but one would fail. Push the images with one tag and set it:\n"
                    f"    pulumi config set {qkey(key)} <tag> --stack {self.stack}")

    # --- what the components ask ------------------------------------------------

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
        return self.route_policies.get(service) or RoutePolicy()

    def image_repository(self, service: str) -> str:
        return f"{self.registry}/{self.harbor_project}/{service}"


def _given(secret: Any) -> bool:
    """A secret counts as set unless it is None or empty text (an Output is set)."""
    return secret is not None and not (isinstance(secret, str) and not secret.strip())


def _problem(err: Any) -> str:
    """One pydantic error as a sentence that names the key."""
    loc = err["loc"]
    if err["type"] == "value_error" and isinstance(err.get("ctx", {}).get("error"), SettingError):
        return str(err["ctx"]["error"])
    key = loc[0] if loc else "?"
    return f"{qkey(str(key))}: {err['msg']}, got {err.get('input')!r}"


# The JSON settings, each parsed by its own function above.
_JSON_SETTINGS = {
    "placement": parse_placement,
    "faults": parse_faults,
    "route_policies": parse_route_policies,
    "tight_circuit_breaking": lambda value: parse_service_list("tightCircuitBreaking", value),
    "canary": parse_canary,
    "ab_test": parse_ab_test,
    "image_digests": parse_image_digests,
}
_FIELDS_BY_KEY = {f.alias: f for f in StackConfig.model_fields.values() if f.alias}


# --- the table of settings, and Pulumi.yaml ----------------------------------


@dataclass(frozen=True)
class Setting:
    key: str
    type: SettingType
    description: str
    default: Any = None  # None: no default; the Pulumi CLI requires the key on every stack
    secret: bool = False  # declared secret in Pulumi.yaml
    sensitive: bool = False  # read as a secret (a Secret field)


def _setting(f: pydantic.fields.FieldInfo) -> Setting:
    extra = f.json_schema_extra or {}
    kind = extra.get("type") or {bool: "boolean", int: "integer", frozenset[str]: "array"}.get(f.annotation, "string")
    return Setting(f.alias, kind, f.description or "", f.default, bool(extra.get("secret")), _SECRET in f.metadata)


SETTINGS: tuple[Setting, ...] = tuple(_setting(f) for f in StackConfig.model_fields.values() if f.alias)
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}


def pulumi_yaml_config_block() -> dict[str, Any]:
    """The `config:` block of Pulumi.yaml as declared by the settings."""
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


def pulumi_yaml_text(current: str) -> str:
    """Pulumi.yaml with its `config:` block (the file's last block) generated from the settings."""
    head = current[:current.index("\nconfig:\n") + 1] if "\nconfig:\n" in current else current.rstrip("\n") + "\n"
    return head + yaml.safe_dump({"config": pulumi_yaml_config_block()}, sort_keys=False, width=1000, allow_unicode=True)


if __name__ == "__main__":  # uv run python -m infra.settings [--write]
    text = pulumi_yaml_text(PULUMI_YAML.read_text())
    if sys.argv[1:] == ["--write"]:
        PULUMI_YAML.write_text(text)
        print(f"wrote {PULUMI_YAML}")
    else:
        print(text, end="")
