"""One app: its Service (in every cluster) and its Deployment (home cluster only),
plus, for the lessons, a second version's Deployment (SecondVersion).

Istio multi-cluster needs the Service in each client cluster so that the
name resolves there, even where no pod backs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.k8sutil import child, meta, preferred_cluster_affinity, restricted_container_security, restricted_pod_security
from infra.names import label_value
from services import catalog

APP_UID = 10001  # the image's user (services/Dockerfile); never Istio's 1337

# Requests and limits per container. The one place to tune them.
# Memory from docs/benchmarks.md (`uv run python -m bench`, section 4): each
# service is 54-60 MiB PSS after the benchmark's load (67-69 MiB RSS before
# issue 16 dropped redis-py), in a venv holding only the image's runtime
# dependencies, and flat under load. Requests 80Mi (the measured figure plus
# a third; 64Mi was below what every pod used then), limits 128Mi (~2x: room
# for 500-item pages and connection bursts).
# Redis (7.0, jemalloc): ~12 MiB empty, ~74 MiB holding 100k movies plus the
# run's bookings; a classroom data set is a few MiB, so 64Mi, and 256Mi
# leaves room for the AOF rewrite fork. CPU: ~0.1-0.3 ms per read and 1.4-1.9 ms across all services
# per booking (same page), so 50m covers a lesson's traffic; 500m caps a pod
# at roughly 1,500-3,000 reads/s.
RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    catalog.USER.name: {"requests": {"cpu": "50m", "memory": "80Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
    catalog.MOVIE.name: {"requests": {"cpu": "50m", "memory": "80Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
    catalog.BOOKING.name: {"requests": {"cpu": "50m", "memory": "80Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
    catalog.GATEWAY.name: {"requests": {"cpu": "50m", "memory": "80Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
    catalog.REDIS.name: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
}


# Shutdown (README 5.x): on deletion the pod leaves the Service's endpoints,
# but the sidecars of both clusters learn it only after their istiod pushes
# (the remote cluster's after its watch of this API server). Until then they
# keep sending requests, and a POST that meets a closed port is not retried
# once it reached the pod. So the app keeps serving for PRESTOP_SLEEP_SECONDS
# (lifecycle.preStop.sleep; Kubernetes 1.30 turns it on by default, 1.29
# needs the PodLifecycleSleepAction gate), and its sidecar drains as long
# (proxy.istio.io/config terminationDrainDuration; Istio's default is 5 s),
# before Granian gets SIGTERM and finishes what it holds.
PRESTOP_SLEEP_SECONDS = 10
TERMINATION_GRACE_SECONDS = 30
PROXY_CONFIG_ANNOTATION = "proxy.istio.io/config"


def proxy_config_annotation() -> dict[str, str]:
    return {PROXY_CONFIG_ANNOTATION: f"terminationDrainDuration: {PRESTOP_SLEEP_SECONDS}s"}


def spread_over_nodes(selector: Mapping[str, str]) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Replicas on different nodes when the cluster has them (ScheduleAnyway:
    a one-node cluster still runs them all), so a node drain takes one."""
    return [k8s.core.v1.TopologySpreadConstraintArgs(
        max_skew=1, topology_key="kubernetes.io/hostname", when_unsatisfiable="ScheduleAnyway",
        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
    )]


def version_selector(labels: Mapping[str, str]) -> dict[str, str]:
    """The pods of one version of an app: app and version. (The first
    version's Deployment selects by app alone, which also matches v2's pods.)"""
    return {catalog.APP_LABEL: labels[catalog.APP_LABEL], catalog.VERSION_LABEL: labels[catalog.VERSION_LABEL]}


def disruption_budget(name: str, labels: Mapping[str, str], opts: pulumi.ResourceOptions) -> k8s.policy.v1.PodDisruptionBudget:
    """At most one pod of this version evicted at a time (kubectl drain, an
    NKS node-pool upgrade). Per version: the eviction API refuses a pod that
    two budgets select, which would block the drain."""
    return k8s.policy.v1.PodDisruptionBudget(
        name,
        metadata=meta(name, labels=labels),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=version_selector(labels)),
        ),
        opts=opts,
    )


def prometheus_annotations(spec: catalog.ServiceSpec) -> dict[str, str]:
    """Under STRICT mTLS Prometheus cannot scrape the app port. With these
    annotations on the pod template Istio's sidecar merges the app's metrics
    into its own endpoint (:15020/stats/prometheus), which Prometheus scrapes."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(spec.port), "prometheus.io/path": catalog.METRICS_PATH}


def env_var(name: str, value: pulumi.Input[str]) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(name=name, value=value)


def field_env(name: str, path: str) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(
        name=name, value_from=k8s.core.v1.EnvVarSourceArgs(field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=path))
    )


def resources(name: str) -> k8s.core.v1.ResourceRequirementsArgs:
    return k8s.core.v1.ResourceRequirementsArgs(**RESOURCES[name])


def http_probe(path: str, port: int, *, initial_delay: int, period: int) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=port),
        initial_delay_seconds=initial_delay, period_seconds=period, timeout_seconds=2, failure_threshold=3,
    )


@dataclass
class PodExtras:
    """What one app's pod needs beyond every app's (the api-gateway's: infra/gateway.py)."""

    env: list[k8s.core.v1.EnvVarArgs] = field(default_factory=list)
    volumes: list[k8s.core.v1.VolumeArgs] = field(default_factory=list)
    mounts: list[k8s.core.v1.VolumeMountArgs] = field(default_factory=list)
    annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    depends_on: list[pulumi.Resource] = field(default_factory=list)


@dataclass(frozen=True)
class MicroserviceArgs:
    spec: catalog.ServiceSpec
    cluster: str  # the cluster this stack manages
    deploy: bool  # True in the app's home cluster
    service_account: str
    # The cluster whose Redis holds the app's data (its placement): REDIS_URL.
    redis_cluster: str = ""
    image: pulumi.Input[str] | None = None
    replicas: int = 2
    version: str = catalog.DEFAULT_VERSION
    extras: PodExtras = field(default_factory=PodExtras)
    depends_on: Sequence[pulumi.Resource] = ()


def app_env(spec: catalog.ServiceSpec, cluster: str, version: str, redis_cluster: str) -> list[k8s.core.v1.EnvVarArgs]:
    """Every app's environment. REDIS_URL is the Service of the Redis in
    `redis_cluster`, the app's home: local for pods at home, the other
    cluster's for a second version or a failover copy placed away from it."""
    env = [
        env_var("SERVICE_NAME", spec.name),
        env_var("SERVICE_VERSION", version),
        env_var("CLUSTER_NAME", cluster),
        env_var("PORT", str(spec.port)),
        field_env("POD_NAME", "metadata.name"),
        field_env("NODE_NAME", "spec.nodeName"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        env_var("REDIS_URL", catalog.REDIS.cluster_url(redis_cluster or cluster)),
    ]
    env += [env_var(peer.url_env, peer.cluster_url()) for peer in catalog.SERVICES.values()]
    return env


def app_deployment(name: str, args: MicroserviceArgs, labels: Mapping[str, str], selector: Mapping[str, str],
                   opts: pulumi.ResourceOptions) -> k8s.apps.v1.Deployment:
    """The Deployment `name` of one version of an app, pinned to args.cluster."""
    spec, extras = args.spec, args.extras
    if args.image is None:
        raise ValueError(f"{name}: an image is required where it is deployed")
    container = k8s.core.v1.ContainerArgs(
        name=spec.name,
        image=args.image,
        image_pull_policy="IfNotPresent",
        ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=spec.port, protocol="TCP")],
        env=app_env(spec, args.cluster, args.version, args.redis_cluster) + extras.env,
        resources=resources(spec.name),
        readiness_probe=http_probe("/readyz", spec.port, initial_delay=2, period=5),
        liveness_probe=http_probe("/healthz", spec.port, initial_delay=10, period=10),
        security_context=restricted_container_security(APP_UID, APP_UID),
        lifecycle=k8s.core.v1.LifecycleArgs(
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(sleep=k8s.core.v1.SleepActionArgs(seconds=PRESTOP_SLEEP_SECONDS)),
        ),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")] + extras.mounts,
    )
    return k8s.apps.v1.Deployment(
        name,
        metadata=meta(name, labels=labels),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=args.replicas,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
            ),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=dict(labels),
                                                    annotations=prometheus_annotations(spec) | proxy_config_annotation()
                                                    | extras.annotations),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=args.service_account,
                    affinity=preferred_cluster_affinity(args.cluster),
                    topology_spread_constraints=spread_over_nodes(version_selector(labels)),
                    security_context=restricted_pod_security(APP_UID, APP_UID),
                    # preStop sleep, then Granian's own shutdown (workers_kill_timeout 5 s).
                    termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
                    containers=[container],
                    volumes=[k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi"))]
                    + extras.volumes,
                ),
            ),
        ),
        opts=opts,
    )


class Microservice(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment | None
    disruption_budget: k8s.policy.v1.PodDisruptionBudget | None

    def __init__(self, name: str, args: MicroserviceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:Microservice", name, None, opts)
        spec = args.spec
        # The version label is sanitized (serviceVersion is free text); SERVICE_VERSION keeps it as typed.
        version_label = label_value(args.version)
        labels = catalog.labels(spec.name, version_label)
        deps = list(args.depends_on) + (args.extras.depends_on if args.deploy else [])
        self.service = k8s.core.v1.Service(
            spec.name,
            metadata=meta(spec.name, labels=catalog.labels(spec.name, version_label)),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=catalog.selector(spec.name),
                ports=[k8s.core.v1.ServicePortArgs(
                    name=spec.port_name, port=spec.port, target_port=spec.port, protocol="TCP", app_protocol="http",
                )],
            ),
            opts=child(self, depends_on=deps),
        )
        self.deployment = self.disruption_budget = None
        if args.deploy:
            self.deployment = app_deployment(spec.name, args, labels, catalog.selector(spec.name), child(self, depends_on=deps))
            self.disruption_budget = disruption_budget(spec.name, labels, child(self, depends_on=deps))
        self.register_outputs({})


class SecondVersion(pulumi.ComponentResource):
    """A second version of an app (canary, A/B lessons): its own Deployment
    <service>-<version> beside the first one's, with the labels app=<service>,
    version=<version>, so the app's Service (selector app only) reaches both
    and DestinationRule subsets tell them apart by `version`."""

    deployment: k8s.apps.v1.Deployment

    def __init__(self, name: str, version: catalog.VersionSpec, args: MicroserviceArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:SecondVersion", name, None, opts)
        labels = catalog.labels(version.spec.name, version.version)
        selector = catalog.selector(version.spec.name) | {catalog.VERSION_LABEL: version.version}
        self.deployment = app_deployment(version.name, replace(args, version=version.version), labels, selector,
                                         child(self, depends_on=list(args.depends_on)))
        self.disruption_budget = disruption_budget(version.name, labels, child(self, depends_on=list(args.depends_on)))
        self.register_outputs({})
