"""Settings read from the environment, once, when an app is built."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services import catalog

# Characters kept in the version shown in X-Served-By (no comma, space or parenthesis).
_HEADER_UNSAFE = re.compile(r"[^A-Za-z0-9._/+-]")


@dataclass(frozen=True)
class Settings:
    service: str
    version: str = catalog.DEFAULT_VERSION
    cluster: str = "local"
    pod: str = field(default_factory=socket.gethostname)
    node: str = field(default_factory=socket.gethostname)
    namespace: str = catalog.NAMESPACE
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Base URLs of the services this one calls, keyed by service name.
    peers: Mapping[str, str] = field(default_factory=dict)
    # Seconds a call to a peer service may take before it gives 504.
    peer_timeout: float = 5.0
    # Seconds a Redis command may take before it counts as unreachable.
    redis_timeout: float = 2.0
    # booking-service: seconds between two passes of its reconciler.
    reconcile_interval: float = 1.0
    ui_dir: Path = catalog.UI_DIR
    # api-gateway only: an optional kubeconfig for the other cluster.
    remote_kubeconfig: Path | None = None
    remote_cluster: str | None = None
    # api-gateway only: a kubeconfig for its own cluster when not running in
    # a pod (out-of-cluster runs, tests); in a pod the ServiceAccount is used.
    local_kubeconfig: Path | None = None
    # api-gateway only: seconds one cluster's status query may take, and how
    # long a status answer is reused so many browsers don't hammer the API.
    k8s_timeout: float = 3.0
    status_cache_seconds: float = 2.0
    # api-gateway only: a shared password for the public address (HTTP
    # Basic; services/common/access.py). None: open to everyone.
    demo_password: str | None = None
    max_body_bytes: int = 64 * 1024
    # Seconds the whole request body may take to arrive (408 after that).
    body_read_timeout: float = 10.0

    def peer_urls(self, name: str) -> tuple[str, ...]:
        """Base URLs of the peer `name`. `<PEER>_URL` may list several,
        comma-separated: `theater local --with-v2` gives movie-service's
        callers v1 and v2, used in turn as a Kubernetes Service spreads
        calls over every pod it selects (services/common/peers.py)."""
        return tuple(u.strip().rstrip("/") for u in self.peers[name].split(",") if u.strip())

    @property
    def spec(self) -> catalog.ServiceSpec:
        return catalog.SERVICES[self.service]

    def info(self) -> dict[str, str]:
        """What GET /info answers: which service, version, cluster, pod and node."""
        return {"service": self.service, "version": self.version, "cluster": self.cluster, "pod": self.pod, "node": self.node}

    @property
    def served_by(self) -> str:
        """`<service>@<cluster>/<pod> (<version>)`: who answered, and which
        version (canary and A/B lessons). The version is made header-safe."""
        return f"{self.service}@{self.cluster}/{self.pod} ({_HEADER_UNSAFE.sub('-', self.version)})"

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings for `service` from environment variables.

        Peer URLs come from `<PEER>_URL` (e.g. USER_SERVICE_URL) and default
        to the peer's local port on 127.0.0.1, which is what `theater local`
        and the tests use.
        """
        env = os.environ if env is None else env
        if service not in catalog.SERVICES:
            raise ValueError(f"unknown service {service!r}; expected one of {sorted(catalog.SERVICES)}")
        spec = catalog.SERVICES[service]
        peers = {
            name: env.get(catalog.SERVICES[name].url_env, catalog.SERVICES[name].local_url()).rstrip("/")
            for name in spec.calls
        }
        host = socket.gethostname()
        remote = env.get("REMOTE_KUBECONFIG")
        local_kubeconfig = env.get("LOCAL_KUBECONFIG")
        return cls(
            service=service,
            version=env.get("SERVICE_VERSION", catalog.DEFAULT_VERSION),
            cluster=env.get("CLUSTER_NAME", "local"),
            pod=env.get("POD_NAME", host),
            node=env.get("NODE_NAME", host),
            namespace=env.get("POD_NAMESPACE", catalog.NAMESPACE),
            redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            peers=peers,
            peer_timeout=float(env.get("PEER_TIMEOUT_SECONDS", "5")),
            redis_timeout=float(env.get("REDIS_TIMEOUT_SECONDS", "2")),
            reconcile_interval=float(env.get("RECONCILE_INTERVAL_SECONDS", "1")),
            ui_dir=Path(env.get("UI_DIR", str(catalog.UI_DIR))),
            remote_kubeconfig=Path(remote) if remote else None,
            remote_cluster=env.get("REMOTE_CLUSTER_NAME") or None,
            local_kubeconfig=Path(local_kubeconfig) if local_kubeconfig else None,
            k8s_timeout=float(env.get("K8S_TIMEOUT_SECONDS", "3")),
            status_cache_seconds=float(env.get("STATUS_CACHE_SECONDS", "2")),
            body_read_timeout=float(env.get("BODY_READ_TIMEOUT_SECONDS", "10")),
            # Blank means unset: a Secret made from `pulumi config set --secret theater-msa:demoPassword ""`.
            demo_password=(env.get("DEMO_PASSWORD") or "").strip() or None,
        )
