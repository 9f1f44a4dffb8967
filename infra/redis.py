"""Redis in each cluster: Deployment `redis` + Service `redis` (tcp-redis 6379).

Each cluster keeps its own Redis (see infra/istio/traffic.py for the
DestinationRule that stops Istio from balancing across both clusters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.k8sutil import child, image_version, meta, restricted_container_security
from infra.microservice import RESOURCES
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


def preferred_cluster_affinity(cluster: str) -> dict:
    return {
        "node_affinity": {
            "preferred_during_scheduling_ignored_during_execution": [{
                "weight": 100,
                "preference": {"match_expressions": [{"key": catalog.CLUSTER_LABEL, "operator": "In", "values": [cluster]}]},
            }]
        }
    }


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
                spec={
                    "access_modes": ["ReadWriteOnce"],
                    "storage_class_name": args.storage_class,
                    "resources": {"requests": {"storage": args.storage_size}},
                },
                opts=child(self, depends_on=deps, retain_on_delete=False),
            )
            data_volume = {"name": "data", "persistent_volume_claim": {"claim_name": f"{r.name}-data"}}
        else:
            data_volume = {"name": "data", "empty_dir": {}}
        self.service = k8s.core.v1.Service(
            r.name,
            metadata=meta(r.name, labels=catalog.labels(r.name)),
            spec={
                "selector": catalog.selector(r.name),
                "ports": [{"name": r.port_name, "port": r.port, "target_port": r.port, "protocol": "TCP", "app_protocol": "tcp"}],
            },
            opts=child(self, depends_on=deps),
        )
        ping = {"exec": {"command": ["redis-cli", "-p", str(r.port), "ping"]}}
        self.deployment = k8s.apps.v1.Deployment(
            r.name,
            metadata=meta(r.name, labels=labels),
            spec={
                "replicas": 1,
                # One writer on a ReadWriteOnce volume: stop the old pod first.
                "strategy": {"type": "Recreate"},
                "selector": {"match_labels": catalog.selector(r.name)},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "service_account_name": args.service_account,
                        "affinity": preferred_cluster_affinity(args.cluster),
                        "security_context": {
                            "run_as_non_root": True,
                            "run_as_user": REDIS_UID,
                            "run_as_group": REDIS_GID,
                            "fs_group": REDIS_GID,
                            "seccomp_profile": {"type": "RuntimeDefault"},
                        },
                        "containers": [{
                            "name": r.name,
                            "image": args.image,
                            "image_pull_policy": "IfNotPresent",
                            "args": ["redis-server", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", "/data",
                                     "--port", str(r.port)],
                            "ports": [{"name": "redis", "container_port": r.port, "protocol": "TCP"}],
                            "resources": RESOURCES[r.name],
                            "readiness_probe": ping | {"initial_delay_seconds": 2, "period_seconds": 5, "timeout_seconds": 2},
                            "liveness_probe": {"tcp_socket": {"port": r.port}, "initial_delay_seconds": 10, "period_seconds": 10},
                            "security_context": restricted_container_security(REDIS_UID, REDIS_GID),
                            "volume_mounts": [{"name": "data", "mount_path": "/data"}, {"name": "tmp", "mount_path": "/tmp"}],
                        }],
                        "volumes": [data_volume, {"name": "tmp", "empty_dir": {"size_limit": "16Mi"}}],
                    },
                },
            },
            opts=child(self, depends_on=deps + ([self.pvc] if self.pvc else [])),
        )
        self.register_outputs({})
