"""Composition root of the theater-msa Pulumi program (one stack per cluster).

Reads the stack configuration once (infra/config.py), then wires the small
components in this folder. `pulumi up --stack ctx1`, `pulumi up --stack ctx2`;
the same program runs under mocks in tests/infra and in `theater render`
(infra/mockrun.py runs this file with runpy, once per stack).
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import services.catalog  # noqa: F401  (installed by `uv sync`)
except ImportError:  # pragma: no cover - the project is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from infra import config as config_mod
from infra.config import ConfigError
from infra.settings import StackConfig
from infra.dashboard_access import OUTPUT_NAME, DashboardAccess, DashboardAccessArgs
from infra.gateway import GatewayPodArgs, gateway_pod
from infra.images import ImagesArgs, ServiceImages
from infra.istio.security import MeshSecurity, SecurityArgs
from infra.istio.traffic import EDGE_VIRTUAL_SERVICE, ISTIO_NAMESPACE, EdgeRouting, MeshTraffic, TrafficArgs
from infra.k8sutil import service_account_of
from infra.microservice import Microservice, MicroserviceArgs, PodExtras, SecondVersion
from infra.namespace import AppNamespace, NamespaceArgs
from infra import preflight
from infra.provider import cluster_provider
from infra.rbac import AppServiceAccount, ServiceAccountArgs
from infra.redis import Redis, RedisArgs
from infra.registry_pull import RegistryPullArgs, RegistryPullSecret
from infra.ui_configmap import read_ui_files
from services import catalog


def dashboard_api_server(cfg: StackConfig) -> str:
    server = cfg.dashboard_api_server or config_mod.kubeconfig_server(cfg.kube_context, cfg.kubeconfig)
    if not server:
        raise ConfigError(
            f"cannot find the API server of context {cfg.kube_context!r} in the kubeconfig; "
            f"set {config_mod.qkey('dashboardApiServer')} with "
            f"`pulumi config set {config_mod.qkey('dashboardApiServer')} https://<api-server>:6443` "
            f"(or set {config_mod.qkey('exportDashboardAccess')} false)"
        )
    return server


def demo_commands(cfg: StackConfig) -> list[str]:
    ctx, ns = cfg.kube_context, catalog.NAMESPACE
    cmds = [
        f"curl -s {cfg.url}/",
        f"kubectl --context {ctx} -n {ns} get deploy,svc,pods -o wide",
        f"kubectl --context {ctx} -n {ns} get destinationrules,virtualservices,peerauthentications,authorizationpolicies",
        f"istioctl --context {ctx} analyze -n {ns}",
    ]
    if cfg.here:
        # Redis endpoints seen by a local app: redis-<this cluster> is this cluster's pod,
        # redis-<other> the other cluster's east-west gateway.
        cmds.append(f"istioctl --context {ctx} proxy-config endpoints deploy/{cfg.here[0]}.{ns} | grep redis")
        # The app's own metrics, merged by the sidecar into its 15020 endpoint (what Prometheus scrapes).
        cmds.append(f"kubectl --context {ctx} -n {ns} port-forward deploy/{cfg.here[0]} 15020:15020 & sleep 3; "
                    f"curl -s localhost:15020/stats/prometheus | grep '^http_requests_total'; kill $!")
    if cfg.is_ingress_cluster:
        cmds += [
            f"kubectl --context {ctx} -n {ISTIO_NAMESPACE} get virtualservice {EDGE_VIRTUAL_SERVICE} -o yaml",
            f"curl -s {cfg.url}/movies",
            f"for i in $(seq 20); do curl -s -o /dev/null -w '%{{http_code}} %{{time_total}}\\n' {cfg.url}/movies; done",
        ]
    cmds += [
        f"pulumi config set theater-msa:faults '{{\"movie-service\": {{\"delay\": \"3s\", \"percent\": 50}}}}' --stack {cfg.stack} && pulumi up --stack {cfg.stack}",
        f"pulumi config rm theater-msa:faults --stack {cfg.stack} && pulumi up --stack {cfg.stack}",
    ]
    return cmds


def build() -> None:
    cfg = config_mod.load()
    here = cfg.here
    gateway_here = catalog.GATEWAY.name in here
    # Validate everything that can fail before declaring anything.
    ui_files = read_ui_files() if gateway_here else None
    api_server = dashboard_api_server(cfg) if cfg.export_dashboard_access else None
    preflight.check(cfg)

    provider = cluster_provider(cfg)
    k8s_opts = pulumi.ResourceOptions(provider=provider)

    ns = AppNamespace("namespace", NamespaceArgs(cfg.istio_revision), k8s_opts)
    in_ns = pulumi.ResourceOptions(provider=provider, depends_on=[ns])

    images = ServiceImages("images", ImagesArgs(here, cfg, cfg.versions_here))

    # Pods pull from a private registry project with this Secret (unless imagePullSecret is false).
    pull_secrets: tuple[str, ...] = ()
    sa_opts = in_ns
    if cfg.image_pull_secret and cfg.pull_password is not None:
        pull = RegistryPullSecret("registry-pull", RegistryPullArgs(cfg.registry, cfg.pull_username, cfg.pull_password), in_ns)
        pull_secrets = (pull.name,)
        sa_opts = pulumi.ResourceOptions(provider=provider, depends_on=[ns, pull])

    # One ServiceAccount per workload running here (AuthorizationPolicies name them);
    # a second version runs as its app's account.
    accounts = {
        name: AppServiceAccount(
            service_account_of(name),
            ServiceAccountArgs(service_account_of(name), automount_token=(name == catalog.GATEWAY.name),
                               image_pull_secrets=pull_secrets),
            sa_opts,
        )
        for name in cfg.workloads_here
    }
    redis_sa = AppServiceAccount(catalog.REDIS.name, ServiceAccountArgs(catalog.REDIS.name, image_pull_secrets=pull_secrets), sa_opts)

    Redis(
        "redis",
        RedisArgs(cluster=cfg.cluster, service_account=catalog.REDIS.name, storage_class=cfg.redis_storage_class,
                  storage_size=cfg.redis_storage_size, image=cfg.redis_image, depends_on=(redis_sa,)),
        in_ns,
    )

    gateway = PodExtras()
    if gateway_here:
        remote = cfg.other_clusters[0] if cfg.other_clusters else ""
        gateway = gateway_pod(
            GatewayPodArgs(ui_files or {}, remote, cfg.remote_status_stack, accounts[catalog.GATEWAY.name],
                           cfg.demo_password), provider, in_ns
        )

    for name, spec in catalog.SERVICES.items():
        deploy = name in here
        Microservice(
            name,
            MicroserviceArgs(
                spec=spec,
                cluster=cfg.cluster,
                deploy=deploy,
                service_account=service_account_of(name),
                redis_cluster=cfg.placement[name],
                image=images.refs.get(name),
                replicas=cfg.replicas,
                version=cfg.service_version,
                extras=gateway if name == catalog.GATEWAY.name else PodExtras(),
                depends_on=[accounts[name]] if deploy else [],
            ),
            in_ns,
        )

    # Lesson v2Cluster: the second version's Deployment beside (or instead of) the first.
    for version in cfg.versions_here:
        SecondVersion(
            version.name,
            version,
            MicroserviceArgs(
                spec=version.spec,
                cluster=cfg.cluster,
                deploy=True,
                service_account=service_account_of(version.spec.name),
                redis_cluster=cfg.placement[version.spec.name],
                image=images.refs[version.name],
                replicas=cfg.replicas,
                depends_on=[accounts[version.spec.name]],
            ),
            in_ns,
        )

    traffic = MeshTraffic("traffic", TrafficArgs(cfg), in_ns)
    MeshSecurity("security", SecurityArgs(cfg), in_ns)
    if cfg.is_ingress_cluster:
        # After the DestinationRules: the edge routes may name their subsets.
        EdgeRouting("edge", TrafficArgs(cfg, depends_on=(traffic,)), k8s_opts)

    if cfg.export_dashboard_access and api_server:
        access = DashboardAccess("dashboard", DashboardAccessArgs(cfg.cluster, api_server), in_ns)
        pulumi.export(OUTPUT_NAME, access.kubeconfig)

    pulumi.export("url", cfg.url)
    pulumi.export("cluster", cfg.cluster)
    pulumi.export("placement", {"here": list(here), "homes": dict(cfg.placement)})
    pulumi.export("images", images.refs)
    pulumi.export("remoteStatus", cfg.remote_status_stack or "not connected (set theater-msa:remoteStatusStack)")
    pulumi.export("demoCommands", demo_commands(cfg))


build()
