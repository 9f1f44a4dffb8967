"""Redis in each cluster: Deployment `redis` + Service `redis` (tcp-redis 6379).

Each cluster keeps its own Redis (see infra/istio/traffic.py for the
DestinationRule that stops Istio from balancing across both clusters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.k8sutil import child, meta, restricted_container_security, restricted_pod_security
from infra.names import image_version
from infra.microservice import resources
from services import catalog

# The redis:*-alpine image's `redis` user and group.
REDIS_UID = 999
REDIS_GID = 1000


@dataclass(frozen=True)
class RedisArgs:
    cluster: str
    service_account: str
    storage_class: str | None = None
    storage_size: str = "1Gi"
    image: str = catalog.REDIS.image
    depends_on: Sequence[pulumi.Resource] = ()


def preferred_cluster_affinity(cluster: str) -> k8s.core.v1.AffinityArgs:
    term = k8s.core.v1.PreferredSchedulingTermArgs(
        weight=100,
        preference=k8s.core.v1.NodeSelectorTermArgs(
            match_expressions=[k8s.core.v1.NodeSelectorRequirementArgs(key=catalog.CLUSTER_LABEL, operator="In", values=[cluster])]
        ),
    )
    return k8s.core.v1.AffinityArgs(
        node_affinity=k8s.core.v1.NodeAffinityArgs(preferred_during_scheduling_ignored_during_execution=[term])
    )


class Redis(pulumi.ComponentResource):
    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:Redis", name, None, opts)
        r = catalog.REDIS
        # The cluster label selects this cluster's Redis pods in the `local`
        # subset of infra/istio/traffic.py.
        labels = catalog.labels(r.name, image_version(args.image)) | {catalog.CLUSTER_POD_LABEL: args.cluster}
        deps = list(args.depends_on)
        self.pvc = None
        if args.storage_class:
            self.pvc = k8s.core.v1.PersistentVolumeClaim(
                f"{r.name}-data",
                metadata=meta(f"{r.name}-data", labels=catalog.labels(r.name)),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=args.storage_class,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": args.storage_size}),
                ),
                opts=child(self, depends_on=deps, retain_on_delete=False),
            )
            data_volume = k8s.core.v1.VolumeArgs(
                name="data", persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=f"{r.name}-data")
            )
        else:
            data_volume = k8s.core.v1.VolumeArgs(name="data", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())
        self.service = k8s.core.v1.Service(
            r.name,
            metadata=meta(r.name, labels=catalog.labels(r.name)),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=catalog.selector(r.name),
                ports=[k8s.core.v1.ServicePortArgs(
                    name=r.port_name, port=r.port, target_port=r.port, protocol="TCP", app_protocol="tcp"
                )],
            ),
            opts=child(self, depends_on=deps),
        )
        container = k8s.core.v1.ContainerArgs(
            name=r.name,
            image=args.image,
            image_pull_policy="IfNotPresent",
            # --protected-mode no: the pod says it itself, instead of relying on the official image's entrypoint
            # (with Debian's redis-server, every service's /readyz answered 503 "redis: RedisReplyError").
            args=["redis-server", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", "/data", "--port", str(r.port),
                  "--protected-mode", "no"],
            ports=[k8s.core.v1.ContainerPortArgs(name="redis", container_port=r.port, protocol="TCP")],
            resources=resources(r.name),
            readiness_probe=k8s.core.v1.ProbeArgs(
                exec_=k8s.core.v1.ExecActionArgs(command=["redis-cli", "-p", str(r.port), "ping"]),
                initial_delay_seconds=2, period_seconds=5, timeout_seconds=2,
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=r.port), initial_delay_seconds=10, period_seconds=10
            ),
            security_context=restricted_container_security(REDIS_UID, REDIS_GID),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="data", mount_path="/data"),
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
        )
        self.deployment = k8s.apps.v1.Deployment(
            r.name,
            metadata=meta(r.name, labels=labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                # One writer on a ReadWriteOnce volume: stop the old pod first.
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=catalog.selector(r.name)),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=args.service_account,
                        affinity=preferred_cluster_affinity(args.cluster),
                        security_context=restricted_pod_security(REDIS_UID, REDIS_GID),
                        containers=[container],
                        volumes=[
                            data_volume,
                            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="16Mi")),
                        ],
                    ),
                ),
            ),
            opts=child(self, depends_on=deps + ([self.pvc] if self.pvc else [])),
        )
        self.register_outputs({})
