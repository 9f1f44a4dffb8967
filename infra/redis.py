"""Redis in each cluster: Deployment `redis`, and one Service per cluster's
Redis (`redis-ctx1`, `redis-ctx2`, tcp-redis 6379) declared in every cluster.

Each cluster keeps its own data. The Service `redis-<c>` selects only the
Redis pods labelled theater-msa/cluster=<c>, so in c it has the local pod as
endpoint and in the other cluster none: Istio then sends a client anywhere
in the mesh to c's Redis (remote endpoints through c's east-west gateway,
whose AUTO_PASSTHROUGH listener has a cluster for every Service; see
services/catalog.py RedisSpec). Each app pod is given the Service of its
data's home cluster (infra/microservice.py, REDIS_URL).

Storage: a PersistentVolumeClaim on the cluster's default StorageClass
unless `redisStorageClass` names another, or is `emptyDir` (data lost when
the pod moves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.k8sutil import child, meta, preferred_cluster_affinity, restricted_container_security, restricted_pod_security
from infra.names import image_version
from infra.microservice import resources
from services import catalog

# The redis:*-alpine image's `redis` user and group.
REDIS_UID = 999
REDIS_GID = 1000


# redisStorageClass value for no PersistentVolumeClaim (an emptyDir). A
# StorageClass name is lower case, so it cannot be this.
EMPTY_DIR = "emptyDir"


@dataclass(frozen=True)
class RedisArgs:
    cluster: str
    service_account: str
    # None: a PVC on the cluster's default StorageClass; EMPTY_DIR: no PVC.
    storage_class: str | None = None
    storage_size: str = "1Gi"
    image: str = catalog.REDIS.image
    depends_on: Sequence[pulumi.Resource] = ()


class Redis(pulumi.ComponentResource):
    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:Redis", name, None, opts)
        r = catalog.REDIS
        # The cluster label selects this cluster's Redis pods in the Service redis-<cluster>.
        labels = catalog.labels(r.name, image_version(args.image)) | {catalog.CLUSTER_POD_LABEL: args.cluster}
        deps = list(args.depends_on)
        self.pvc = None
        if args.storage_class != EMPTY_DIR:
            self.pvc = k8s.core.v1.PersistentVolumeClaim(
                f"{r.name}-data",
                metadata=meta(f"{r.name}-data", labels=catalog.labels(r.name)),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    # None: the cluster's default StorageClass (NKS: nks-block-storage).
                    storage_class_name=args.storage_class,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": args.storage_size}),
                ),
                # The provider waits until the claim is Bound, or Pending for a
                # WaitForFirstConsumer class (bound once the pod is scheduled).
                opts=child(self, depends_on=deps, retain_on_delete=False),
            )
            data_volume = k8s.core.v1.VolumeArgs(
                name="data", persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=f"{r.name}-data")
            )
        else:
            data_volume = k8s.core.v1.VolumeArgs(name="data", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())
        # One Service per cluster's Redis, in every cluster (see the module docstring).
        self.services = {
            cluster: k8s.core.v1.Service(
                r.service_name(cluster),
                metadata=meta(r.service_name(cluster), labels=catalog.labels(r.name) | {catalog.CLUSTER_POD_LABEL: cluster}),
                spec=k8s.core.v1.ServiceSpecArgs(
                    selector=catalog.selector(r.name) | {catalog.CLUSTER_POD_LABEL: cluster},
                    ports=[k8s.core.v1.ServicePortArgs(
                        name=r.port_name, port=r.port, target_port=r.port, protocol="TCP", app_protocol="tcp"
                    )],
                ),
                opts=child(self, depends_on=deps),
            )
            for cluster in catalog.CLUSTERS
        }
        container = k8s.core.v1.ContainerArgs(
            name=r.name,
            image=args.image,
            image_pull_policy="IfNotPresent",
            # protected-mode: with no password Redis answers only loopback clients,
            # and the sidecar connects from the pod IP (127.0.0.6 since Istio 1.10,
            # the pod's own address before, and always under ambient or without
            # a sidecar). Access is the mesh's job: STRICT mTLS and redis-allow. The pod says
            # it itself rather than relying on the official image's entrypoint (with
            # Debian's redis-server every /readyz answered 503 in the real-pod e2e).
            args=["redis-server", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", "/data", "--port", str(r.port),
                  "--protected-mode", "no", *r.memory_args()],
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
